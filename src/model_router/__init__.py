"""Route LLM requests across Claude tiers on Amazon Bedrock with AWS Step Functions."""

__version__ = "0.1.0"
