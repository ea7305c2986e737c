"""The champion pointer: the SSM parameter ``/<stack>/router/champion-model-uri`` the stack creates (when a
router model artifact is named) and the classifier reads, holding ``bundled`` or an artifact URI.

Why SSM and not the stack parameter: promote and rollback take effect without a deploy (every classifier within
its pointer TTL, new containers at once), each change is a parameter version (who, when, what: the audit trail
and what rollback walks), and a later ``sam deploy`` with the same RouterModelUri leaves it alone (CloudFormation
changes the parameter only when RouterModelUri changes, which is then the owner's explicit choice).

Each write says what made it in the version's description: ``model-router promote`` or ``model-router rollback
to version N``. Rollback follows those: after a rollback to version 3, the next rollback goes to the champion
before version 3, not back to the one just rolled away from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PROMOTED = "model-router promote"
ROLLED_BACK = "model-router rollback to version {version}"
_ROLLED_BACK = re.compile(r"^model-router rollback to version (\d+)\b")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


def parameter_name(stack: str) -> str:
    """The champion pointer of stack ``stack`` (template.yaml: ChampionModelParameter); ValueError for a name
    CloudFormation would not accept."""
    if not _STACK_NAME.match(stack):
        raise ValueError(f"{stack!r} is not a CloudFormation stack name (a letter, then letters, digits and "
                         "hyphens, at most 128)")
    return f"/{stack}/router/champion-model-uri"


@dataclass(frozen=True)
class Version:
    version: int
    value: str
    description: str = ""
    modified: str = ""  # ISO time
    user: str = ""  # the ARN that wrote it


def current(ssm: Any, name: str) -> Version:
    parameter = ssm.get_parameter(Name=name)["Parameter"]
    return Version(int(parameter["Version"]), str(parameter["Value"]).strip())


def history(ssm: Any, name: str) -> list[Version]:
    """Every version of the parameter SSM keeps (its last 100), oldest first."""
    versions: list[Version] = []
    kwargs: dict[str, Any] = {"Name": name, "MaxResults": 50}
    while True:
        page = ssm.get_parameter_history(**kwargs)
        for item in page.get("Parameters", []):
            modified = item.get("LastModifiedDate")
            versions.append(Version(int(item["Version"]), str(item["Value"]).strip(), item.get("Description") or "",
                                    modified.isoformat() if hasattr(modified, "isoformat") else str(modified or ""),
                                    item.get("LastModifiedUser") or ""))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return sorted(versions, key=lambda v: v.version)


def rollback_target(versions: list[Version]) -> Version | None:
    """The champion before the current one: the newest earlier version with another value, counted from the
    version the current one restored when the current one is a rollback (so rollbacks walk back, not toggle)."""
    if not versions:
        return None
    by_number = {v.version: i for i, v in enumerate(versions)}
    index, seen = len(versions) - 1, set()
    while (match := _ROLLED_BACK.match(versions[index].description)) and index not in seen:
        seen.add(index)
        restored = by_number.get(int(match[1]))
        if restored is None or versions[restored].value != versions[index].value:
            break
        index = restored
    value = versions[index].value
    return next((v for v in reversed(versions[:index]) if v.value != value), None)


def set_champion(ssm: Any, name: str, value: str, description: str) -> int:
    """Point the champion at ``value``; the new version number."""
    response = ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True, Description=description)
    return int(response["Version"])
