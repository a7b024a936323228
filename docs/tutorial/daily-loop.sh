#!/usr/bin/env bash
# The daily loop, end to end: a shell pipeline (the lamin CLI) and a Python
# pipeline (psycopg) register, curate, annotate, query, version, load and share
# their data. The README's "Tutorial" walks through it; scripts/test runs it.
#
# Needs: DATABASE_URL (`. .lamin/env` after scripts/up), `lamin` and `psql` on
# PATH, a running sidecar (scripts/up starts one), the ontologies cell_type
# and tissue and the human genes imported (scripts/up does), and a Python with
# psycopg and pyarrow ($PYTHON, default python3). The sample files are the
# test fixtures ($DATA, default tests/fixtures).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${DATA:-$here/../../tests/fixtures}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sql() { psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -At -F ' | ' "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "1. save files from the shell: the uid alone on stdout"
cells=$(lamin save "$data/tabular/cells.parquet" --key tutorial/raw/cells.parquet --description "1,000 cells")
pbmc=$(lamin save "$data/anndata/pbmc.h5ad" --key tutorial/raw/pbmc.h5ad)
echo "cells $cells, pbmc $pbmc"
# The same bytes again: the same artifact, nothing uploaded.
test "$(lamin save "$data/tabular/cells.parquet" --key tutorial/raw/cells.parquet)" = "$cells"

say "2. find: search an ontology, list, describe"
lamin search "T lymphocyte" --registry bionty.cell_type --limit 3
lamin ls tutorial/
lamin describe "$pbmc" > "$work/pbmc.json"

say "3. curate against the ontologies, then annotate with what validated"
for curation in "'$cells', 'cell_type', 'bionty.cell_type'" "'$pbmc', 'obs.cell_type', 'bionty.cell_type'" \
                "'$pbmc', 'var.index', 'bionty.gene', 'ensembl_gene_id'"; do
    job=$(sql -c "SELECT lamin.curate($curation)")
    sql -c "SELECT lamin.await_job($job)"   # a failed job raises its error here
done
sql -c "SELECT column_name, value, n, validated, standardized, suggestion FROM lamin.curation_report('$pbmc')"
sql -c "SELECT lamin.annotate_curated('$cells', 'cell_type'), lamin.annotate_curated('$pbmc', 'obs.cell_type'),
               lamin.annotate_curated('$pbmc', 'var.index')"
sql <<SQL
SELECT lamin.create_feature('tissue', 'cat[bionty.tissue]');
SELECT lamin.annotate('$pbmc', 'tissue', ARRAY['lung']);
SELECT lamin.annotate('$pbmc', 'n_genes', ARRAY['595']);
SELECT lamin.annotate('$cells', 'tissue', ARRAY['blood']);
SQL

say "4. a Python pipeline: its run, an input, an output"
rich=$("${PYTHON:-python3}" "$here/pipeline.py" "$cells" "$work")
echo "rich_cells $rich"

say "5. a shell pipeline: lamin track, --run, lamin finish"
run=$(lamin track --key tutorial/qc.sh --params '{"max_genes": 20}')
lamin cat "$cells" --columns cell_id,cell_type,n_genes --where "n_genes < 20 AND (cell_type = 'B cell' OR cell_type IN ('T cell'))" \
    --format csv > "$work/qc.csv"
qc=$(lamin save "$work/qc.csv" --key tutorial/qc.csv --run "$run")
lamin finish "$run"

say "6. questions, one query each"
echo "-- the latest artifacts annotated with any T cell (CL:0000084 or below):"
sql -c "SELECT DISTINCT artifact_uid, key FROM lamin.annotations
        WHERE is_latest AND ontology_id IN (SELECT ontology_id FROM bionty.descendants('CL:0000084', include_self => true))
        ORDER BY key"
echo "-- artifacts where n_genes > 100 and tissue is lung:"
sql -c "SELECT uid, key FROM lamin.find_artifacts('{\"n_genes\": {\">\": 100}, \"tissue\": \"lung\"}')"
echo "-- runs of tutorial/pipeline.py with their inputs and outputs:"
sql -c "SELECT run_uid, run_status, direction, key FROM lamin.run_artifacts
        WHERE transform_key = 'tutorial/pipeline.py' ORDER BY started_at, direction, key"

say "7. versions and lineage"
cp "$work/qc.csv" "$work/qc-v2.csv" && echo "cell-9999,T cell,1" >> "$work/qc-v2.csv"
qc2=$(lamin save "$work/qc-v2.csv" --key tutorial/qc.csv)   # the same key, new bytes: version 2
sql -c "SELECT uid, is_latest FROM lamin.artifacts WHERE key = 'tutorial/qc.csv' ORDER BY uid"
lamin get tutorial/qc.csv --to "$work/download/"          # a key gets its latest version
sql -c "SELECT depth, source_type, source_label, target_label FROM lamin.lineage('$rich')"

say "8. into the warehouse and back"
sql -c "CREATE SCHEMA IF NOT EXISTS analysis"
job=$(sql -c "SELECT lamin.load('$cells', 'analysis.tutorial_cells')")
sql -c "SELECT lamin.await_job($job)"
job=$(sql -c "SELECT lamin.export('SELECT cell_type::text, count(*) AS n FROM analysis.tutorial_cells GROUP BY 1 ORDER BY 1',
                                  'tutorial/cells_by_type.parquet')")
sql -c "SELECT lamin.await_job($job)"
by_type=$(sql -c "SELECT result ->> 'uid' FROM lamin.jobs WHERE id = $job")
lamin cat "$by_type" --format csv

say "9. spaces and grants: a lab space that a reader role can read"
sql <<SQL
SELECT lamin.create_space('tutorial_lab') WHERE NOT EXISTS (SELECT FROM lamin.space WHERE name = 'tutorial_lab');
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tutorial_reader') THEN
        CREATE ROLE tutorial_reader LOGIN PASSWORD 'tutorial' IN ROLE lamin_reader;
    END IF;
END \$\$;
SELECT lamin.grant('tutorial_lab', 'tutorial_reader', 'read');
SQL
echo "cell-8888,B cell,2" >> "$work/qc-v2.csv"   # new bytes: content already saved elsewhere would come back as it is
lab=$(lamin save "$work/qc-v2.csv" --key tutorial/lab/qc.csv --space tutorial_lab)
sql -c "SET ROLE tutorial_reader" -c "SELECT key, space FROM lamin.artifacts WHERE uid = '$lab'"

say "done: qc $qc (v2 $qc2), rich_cells $rich, lab $lab"
