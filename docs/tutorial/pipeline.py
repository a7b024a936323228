"""A Python pipeline in the daily loop: track a run, read an artifact,
write a result with pyarrow, save it with the CLI and annotate it.

    python pipeline.py CELLS_UID WORKDIR     (DATABASE_URL in the environment)

Prints the uid of the artifact it saved.
"""
import os
import subprocess
import sys

import psycopg
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg.types.json import Jsonb

cells_uid, workdir = sys.argv[1], sys.argv[2]


def lamin(*args):
    """Run a lamin CLI verb; its result is stdout (messages go to stderr)."""
    out = subprocess.run(["lamin", *args], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip()


# autocommit: the run that lamin.track starts is committed at once, so the
# CLI (another session) sees it. Without it, call conn.commit() after track.
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    run = conn.execute(
        "SELECT lamin.track('tutorial/pipeline.py', params => %s)", [Jsonb({"min_genes": 500})]
    ).fetchone()[0]

    # Read: `lamin get --run` downloads (sha256 checked) and records the input.
    path = lamin("get", cells_uid, "--run", run, "--to", workdir + "/")
    cells = pq.read_table(path)
    rich = cells.filter(pc.greater_equal(cells["n_genes"], 500))
    out = os.path.join(workdir, "rich_cells.parquet")
    pq.write_table(rich, out)

    # Write: the result is an output of the run.
    uid = lamin("save", out, "--key", "tutorial/rich_cells.parquet", "--run", run)
    conn.execute("SELECT lamin.create_feature('n_cells', 'int')")
    conn.execute("SELECT lamin.annotate(%s, 'n_cells', ARRAY[%s])", [uid, str(rich.num_rows)])
    conn.execute("SELECT lamin.use_run(%s)", [run])
    conn.execute("SELECT lamin.finish()")
    print(uid)
