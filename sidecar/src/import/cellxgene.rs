//! The cellxgene-ontology-guide JSON files (`CL-ontology-v2026-03-26.json.zst`):
//! one object mapping each ontology id to its label, synonyms, description,
//! deprecation and ancestors with distances (1 = direct parent). Parsed as a
//! stream, one term at a time, so NCBITaxon's 844 MB need little memory.

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::term::Term;

#[derive(Deserialize)]
struct RawTerm {
    label: Option<String>,
    description: Option<String>,
    #[serde(default)]
    synonyms: Vec<String>,
    #[serde(default)]
    ancestors: HashMap<String, i64>,
    #[serde(default)]
    deprecated: bool,
    replaced_by: Option<String>,
}

impl RawTerm {
    fn into_term(self, ontology_id: String) -> Term {
        let mut parents: Vec<(String, String)> = self
            .ancestors
            .into_iter()
            .filter(|(_, distance)| *distance == 1)
            // The files mix is_a and part_of at distance 1 without saying which.
            .map(|(id, _)| (id, "parent".to_string()))
            .collect();
        parents.sort();
        let mut term = Term {
            ontology_id,
            name: self.label,
            synonyms: self.synonyms,
            description: self.description,
            abbr: None,
            deprecated: self.deprecated,
            replaced_by: self.replaced_by,
            parents,
        };
        term.tidy();
        term
    }
}

struct Terms<'a, F> {
    emit: &'a mut F,
    count: u64,
}

impl<'de, F: FnMut(Term) -> anyhow::Result<()>> Visitor<'de> for Terms<'_, F> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object mapping ontology ids to terms")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<u64, A::Error> {
        while let Some(id) = map.next_key::<String>()? {
            let raw: RawTerm = map.next_value()?;
            (self.emit)(raw.into_term(id)).map_err(|e| A::Error::custom(format!("{e:#}")))?;
            self.count += 1;
        }
        Ok(self.count)
    }
}

impl<'de, F: FnMut(Term) -> anyhow::Result<()>> DeserializeSeed<'de> for Terms<'_, F> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_map(self)
    }
}

/// Stream every term to `emit`; returns how many there were.
pub fn read_cellxgene(
    input: impl BufRead,
    what: &str,
    mut emit: impl FnMut(Term) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut de = serde_json::Deserializer::from_reader(input);
    let count = Terms {
        emit: &mut emit,
        count: 0,
    }
    .deserialize(&mut de)
    .map_err(|e| anyhow::anyhow!("{what}: not a complete cellxgene ontology JSON file: {e}"))?;
    de.end()
        .map_err(|e| anyhow::anyhow!("{what}: unexpected data after the terms: {e}"))?;
    Ok(count)
}

/// `CL-ontology-v2026-03-26.json.zst` → (`cl`, `2026-03-26`).
pub fn name_and_version_from_file_name(file_name: &str) -> Option<(String, String)> {
    let (prefix, rest) = file_name.split_once("-ontology-")?;
    let version = rest.split(".json").next()?;
    let version = version.strip_prefix('v').unwrap_or(version);
    (!prefix.is_empty() && !version.is_empty())
        .then(|| (prefix.to_lowercase(), version.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "CL:0000084": {"ancestors": {"CL:0000542": 1, "CL:0000000": 2}, "label": "T cell",
                     "synonyms": ["T lymphocyte", "T-cell"], "deprecated": false, "comments": ["x"]},
      "CL:0000002": {"ancestors": {}, "label": "obsolete immortal cell line cell", "deprecated": true,
                     "replaced_by": "CLO:0000019"}
    }"#;

    #[test]
    fn reads_terms_with_direct_parents_only() {
        let mut terms = Vec::new();
        let n = read_cellxgene(SAMPLE.as_bytes(), "sample", |t| {
            terms.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(terms[0].name.as_deref(), Some("T cell"));
        assert_eq!(
            terms[0].parents,
            vec![("CL:0000542".to_string(), "parent".to_string())]
        );
        assert_eq!(terms[0].synonyms.len(), 2);
        assert!(terms[1].deprecated);
        assert_eq!(terms[1].replaced_by.as_deref(), Some("CLO:0000019"));
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let cut = &SAMPLE[..SAMPLE.len() / 2];
        let err = read_cellxgene(cut.as_bytes(), "cut.json", |_| Ok(())).unwrap_err();
        assert!(
            err.to_string().contains("cut.json: not a complete"),
            "{err}"
        );
    }

    #[test]
    fn file_names_give_source_and_version() {
        assert_eq!(
            name_and_version_from_file_name("CL-ontology-v2026-03-26.json.zst"),
            Some(("cl".to_string(), "2026-03-26".to_string()))
        );
        assert_eq!(
            name_and_version_from_file_name("HANCESTRO-ontology-3.0.json.zst"),
            Some(("hancestro".to_string(), "3.0".to_string()))
        );
        assert_eq!(name_and_version_from_file_name("cl.obo"), None);
    }
}
