"""Progress lines: every step reports what it did, with counts, to the Dagster log and, when the
CLI runs the job (TALLY_PROGRESS=1), as one plain line on stdout so a long run never looks hung."""
import os

import dagster as dg

PROGRESS_VARIABLE = "TALLY_PROGRESS"


def report(context: dg.AssetExecutionContext, message: str) -> None:
    context.log.info(message)
    if os.environ.get(PROGRESS_VARIABLE):
        print(f"  {message}", flush=True)
