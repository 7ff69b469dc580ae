"""Write a draft schema inferred from a run's statistics: `python -m review.schema_draft`.

This is what TFX's SchemaGen does (tfdv.infer_schema on StatisticsGen's
output). The draft is a starting point for `schema/schema.pbtxt`, never a
replacement: curate it by hand (domains, presence, the SERVING environment
without `tips`, drift thresholds) before using it.
"""

from __future__ import annotations

import argparse
import os
import sys

from metadata import names
from metadata import store as pipeline_store
from metadata.artifacts import STATS_FILE
from metadata.store import Location, MetadataConnectionError, describe
from options import declared as options_declared


def latest_statistics_uri(where: Location) -> str:
    store = pipeline_store.open_store(where)
    artifacts = [  # Transform records statistics of this type too; take StatisticsGen's
        a for a in store.get_artifacts_by_type(names.STATISTICS)
        if f"/{names.STATISTICS_GEN}/" in a.uri
    ]
    if not artifacts:
        raise LookupError(f"no statistics recorded in {describe(where)}; run the pipeline first")
    return max(artifacts, key=lambda a: a.id).uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="outputs", help="a pipeline run's output folder")
    parser.add_argument("--out", default="schema/draft.pbtxt", help="where to write the draft")
    options_declared.add_metadata_option(parser)
    args = parser.parse_args(argv)
    try:
        where = options_declared.metadata_location(args)
        uri = latest_statistics_uri(where)
    except (ValueError, MetadataConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        import tensorflow_data_validation as tfdv

        stats = tfdv.load_stats_binary(os.path.join(uri, "Split-train", STATS_FILE))
        tfdv.write_schema_text(tfdv.infer_schema(stats), args.out)
    except (OSError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Draft schema written to {args.out}; compare it with schema/schema.pbtxt.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
