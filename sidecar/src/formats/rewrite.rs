//! Copies of files with some values of some columns replaced (standardizing
//! a dataset: synonyms written as their registry names). The copy keeps
//! everything else as it was: parquet rows, types and metadata; CSV/TSV
//! fields byte for byte; an h5ad file's other groups, with only the
//! categories (and codes, where two categories become one) of the named obs
//! or var columns rewritten. The source file is never changed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use super::anndata::{string_attr, strings, write_strings};
use super::delimiter_of;

/// Per frame (`columns` of a table; `obs`, `var` of an AnnData), per
/// column: value → its replacement.
pub type Replacements = BTreeMap<String, BTreeMap<String, HashMap<String, String>>>;

/// Rows whose value was replaced, per "frame.column".
pub type Replaced = BTreeMap<String, u64>;

/// Write a copy of the local file `src` (by its suffix) to `dst` with the
/// replacements made (blocking).
pub fn rewrite(
    src: &Path,
    dst: &Path,
    suffix: &str,
    replacements: &Replacements,
) -> anyhow::Result<Replaced> {
    match suffix {
        ".parquet" => parquet(src, dst, replacements.get("columns")),
        ".h5ad" => h5ad(src, dst, replacements),
        _ => match delimiter_of(suffix) {
            Some(d) => delimited(src, dst, d, replacements.get("columns")),
            None => bail!("standardizing writes parquet, CSV/TSV and h5ad files; a {suffix} is not one of them"),
        },
    }
}

/// One text array with its values replaced; the count of replaced rows.
fn replace_text(
    array: &ArrayRef,
    map: &HashMap<String, String>,
) -> anyhow::Result<(ArrayRef, u64)> {
    let text = arrow::compute::cast(array, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8");
    let mut n = 0;
    let out: StringArray = text
        .iter()
        .map(|v| {
            v.map(|v| match map.get(v) {
                Some(to) => {
                    n += 1;
                    to.as_str()
                }
                None => v,
            })
        })
        .collect();
    // Back to the column's own type (a dictionary stays a dictionary: a pandas categorical).
    Ok((
        arrow::compute::cast(&(Arc::new(out) as ArrayRef), array.data_type())?,
        n,
    ))
}

fn parquet(
    src: &Path,
    dst: &Path,
    columns: Option<&BTreeMap<String, HashMap<String, String>>>,
) -> anyhow::Result<Replaced> {
    let empty = BTreeMap::new();
    let columns = columns.unwrap_or(&empty);
    let file =
        std::fs::File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable parquet file", src.display()))?;
    // The file's own schema, metadata included (pandas keeps its index and dtypes there).
    let schema = builder.schema().clone();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let out =
        std::fs::File::create(dst).with_context(|| format!("cannot write {}", dst.display()))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props))?;
    let mut replaced = Replaced::new();
    for batch in builder.with_batch_size(65_536).build()? {
        let batch = batch?;
        let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
        for (name, map) in columns {
            let i = schema
                .index_of(name)
                .with_context(|| format!("no column {name:?}"))?;
            let (array, n) = replace_text(&arrays[i], map)?;
            arrays[i] = array;
            *replaced.entry(format!("columns.{name}")).or_default() += n;
        }
        writer.write(&RecordBatch::try_new(schema.clone(), arrays)?)?;
    }
    writer.close()?;
    Ok(replaced)
}

fn delimited(
    src: &Path,
    dst: &Path,
    delimiter: u8,
    columns: Option<&BTreeMap<String, HashMap<String, String>>>,
) -> anyhow::Result<Replaced> {
    let empty = BTreeMap::new();
    let columns = columns.unwrap_or(&empty);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_path(src)
        .with_context(|| format!("cannot open {}", src.display()))?;
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_path(dst)
        .with_context(|| format!("cannot write {}", dst.display()))?;
    let header = reader.headers()?.clone();
    let targets: Vec<(usize, &String, &HashMap<String, String>)> = columns
        .iter()
        .map(|(name, map)| {
            header
                .iter()
                .position(|h| h == name)
                .map(|i| (i, name, map))
                .with_context(|| format!("no column {name:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    writer.write_record(&header)?;
    let mut replaced = Replaced::new();
    for record in reader.records() {
        let record = record?;
        let mut fields: Vec<&str> = record.iter().collect();
        for (i, name, map) in &targets {
            if let Some(to) = fields.get(*i).and_then(|v| map.get(*v)) {
                fields[*i] = to.as_str();
                *replaced.entry(format!("columns.{name}")).or_default() += 1;
            }
        }
        writer.write_record(&fields)?;
    }
    writer.flush()?;
    Ok(replaced)
}

fn h5ad(src: &Path, dst: &Path, replacements: &Replacements) -> anyhow::Result<Replaced> {
    std::fs::copy(src, dst)
        .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
    let file = hdf5::File::open_rw(dst)
        .with_context(|| format!("{} is not a writable HDF5 file", dst.display()))?;
    let mut replaced = Replaced::new();
    for (frame, columns) in replacements {
        let group = file
            .group(frame)
            .with_context(|| format!("no {frame} group"))?;
        for (name, map) in columns {
            let column = group
                .group(name)
                .ok()
                .filter(|g| string_attr(g, "encoding-type").as_deref() == Some("categorical"));
            let Some(column) = column else {
                // A plain string column: its values, replaced.
                let ds = group
                    .dataset(name)
                    .with_context(|| format!("{frame}/{name} cannot be read"))?;
                let mut values = strings(&ds)?;
                let mut n = 0;
                for v in values.iter_mut() {
                    if let Some(to) = map.get(v.as_str()) {
                        *v = to.clone();
                        n += 1;
                    }
                }
                group.unlink(name)?;
                write_strings(&group, name, &values)?;
                replaced.insert(format!("{frame}.{name}"), n);
                continue;
            };
            // A categorical: its categories renamed; two that become one are merged (codes remapped).
            let categories = strings(&column.dataset("categories")?)?;
            let mut merged: Vec<String> = Vec::new();
            let mut position: HashMap<String, usize> = HashMap::new();
            let mut new_code = Vec::with_capacity(categories.len());
            let mut renamed = Vec::with_capacity(categories.len());
            for c in &categories {
                let to = map.get(c.as_str()).cloned().unwrap_or_else(|| c.clone());
                renamed.push(to != *c);
                let i = *position.entry(to.clone()).or_insert_with(|| {
                    merged.push(to);
                    merged.len() - 1
                });
                new_code.push(i as i64);
            }
            let codes_ds = column.dataset("codes")?;
            let codes: Vec<i64> = codes_ds.read_raw::<i64>()?;
            let category = |c: i64| usize::try_from(c).ok().filter(|c| *c < categories.len());
            let n = codes
                .iter()
                .filter(|c| category(**c).is_some_and(|c| renamed[c]))
                .count() as u64;
            if merged.len() < categories.len() {
                let codes: Vec<i64> = codes
                    .into_iter()
                    .map(|c| {
                        usize::try_from(c)
                            .ok()
                            .and_then(|c| new_code.get(c).copied())
                            .unwrap_or(-1)
                    })
                    .collect();
                codes_ds.write_raw(&codes)?;
            }
            column.unlink("categories")?;
            write_strings(&column, "categories", &merged)?;
            replaced.insert(format!("{frame}.{name}"), n);
        }
    }
    file.flush()?;
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_replaced_and_the_rest_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.csv");
        std::fs::write(
            &src,
            "id,cell_type,x\n1,B-cell,1.50\n2,\"T cell, x\",2\n3,B-cell,3e0\n",
        )
        .unwrap();
        let dst = dir.path().join("b.csv");
        let maps: Replacements = [(
            "columns".to_string(),
            [(
                "cell_type".to_string(),
                [("B-cell".to_string(), "B cell".to_string())].into(),
            )]
            .into(),
        )]
        .into();
        let n = rewrite(&src, &dst, ".csv", &maps).unwrap();
        assert_eq!(n["columns.cell_type"], 2);
        assert_eq!(
            std::fs::read_to_string(&dst).unwrap(),
            "id,cell_type,x\n1,B cell,1.50\n2,\"T cell, x\",2\n3,B cell,3e0\n"
        );
        let unknown: Replacements = [(
            "columns".to_string(),
            [("nope".to_string(), HashMap::new())].into(),
        )]
        .into();
        assert!(rewrite(&src, &dst, ".csv", &unknown).is_err());
    }
}
