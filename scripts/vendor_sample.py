"""Vendor a small, licensed sample of the shared evaluation data into the package.

The product must not need ../shared at run time, so the replay provider, the demo and the tests
read this sample. Re-run to regenerate it (deterministic: fixed seed, sorted ids):

    python scripts/vendor_sample.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
from pathlib import Path

# source -> how many dev records to keep; the two sources with answer texts are what the demo replays.
SAMPLE_SIZES = {
    "routellm-gsm8k": 160,
    "routellm-mtbench": 66,
    "routellm-mmlu": 160,
    "llmrouter": 260,
}
SEED = 20261123
OUT = Path(__file__).resolve().parent.parent / "src" / "model_router_tools" / "replay" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    rng = random.Random(SEED)
    records: list[dict] = []
    models: dict[str, dict] = {}
    for source, size in SAMPLE_SIZES.items():
        with gzip.open(args.data / f"{source}.dev.jsonl.gz", "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        picked = rows if len(rows) <= size else rng.sample(rows, size)
        records.extend(sorted(picked, key=lambda r: int(r["id"].rsplit("-", 1)[1])))
        meta = json.loads((args.data / f"{source}.models.json").read_text())
        models[source] = {
            "tiers": meta["tiers"],
            "upstream": meta["upstream"],
            "models": {
                m["name"]: {"input_usd_per_1m": m["input_usd_per_1m"], "output_usd_per_1m": m["output_usd_per_1m"]}
                for m in meta["models"]
            },
        }
    OUT.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the gzip bytes reproducible.
    with open(OUT / "sample.jsonl.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    (OUT / "sample.models.json").write_text(json.dumps(models, indent=1, sort_keys=True) + "\n")
    licenses = OUT / "licenses"
    licenses.mkdir(exist_ok=True)
    for lic in (args.data / "licenses").iterdir():
        shutil.copy(lic, licenses / lic.name)
    counts = {s: sum(r["source"] == s for r in records) for s in SAMPLE_SIZES}
    print(f"wrote {len(records)} records to {OUT / 'sample.jsonl.gz'}: {counts}")


if __name__ == "__main__":
    main()
