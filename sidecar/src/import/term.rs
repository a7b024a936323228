//! What the importers produce: ontology terms and genes, ready for COPY.

/// One ontology term as a source states it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Term {
    pub ontology_id: String,
    pub name: Option<String>,
    pub synonyms: Vec<String>,
    pub description: Option<String>,
    pub abbr: Option<String>,
    pub deprecated: bool,
    pub replaced_by: Option<String>,
    /// Direct parents (ontology ids) with the relation to each (is_a, part_of,
    /// or `parent` when the source does not say which).
    pub parents: Vec<(String, String)>,
}

impl Term {
    /// The first field holding a NUL byte, which Postgres text cannot store.
    pub fn field_with_nul(&self) -> Option<&'static str> {
        let has = |s: &str| s.contains('\0');
        if has(&self.ontology_id) {
            Some("id")
        } else if self.name.as_deref().is_some_and(has) {
            Some("name")
        } else if self.synonyms.iter().any(|s| has(s)) {
            Some("synonyms")
        } else if self.description.as_deref().is_some_and(has) {
            Some("description")
        } else if self.abbr.as_deref().is_some_and(has) {
            Some("abbreviation")
        } else if self.replaced_by.as_deref().is_some_and(has)
            || self.parents.iter().any(|(p, r)| has(p) || has(r))
        {
            Some("references")
        } else {
            None
        }
    }

    /// The prefix of the ontology id (`CL` of `CL:0000084`).
    pub fn prefix(&self) -> &str {
        self.ontology_id
            .split_once(':')
            .map_or(self.ontology_id.as_str(), |(p, _)| p)
    }

    /// Synonyms without duplicates, blanks, or the name itself, in source order.
    /// Terms without a label (some obsolete ones) are named by their id.
    pub fn tidy(&mut self) {
        if self.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            self.name = Some(self.ontology_id.clone());
        }
        let name = self.name.clone().unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        self.synonyms
            .retain(|s| !s.trim().is_empty() && *s != name && seen.insert(s.clone()));
        let mut seen = std::collections::HashSet::new();
        self.parents
            .retain(|p| p.0 != self.ontology_id && seen.insert(p.clone()));
    }
}

/// One gene, merged from the gene tables given for an organism.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gene {
    pub ensembl_gene_id: String,
    pub symbol: Option<String>,
    pub ncbi_gene_ids: Vec<String>,
    pub hgnc_id: Option<String>,
    pub mgi_id: Option<String>,
    pub biotype: Option<String>,
    pub synonyms: Vec<String>,
    pub description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_drops_blank_repeated_and_self_references() {
        let mut t = Term {
            ontology_id: "CL:1".into(),
            name: Some("T cell".into()),
            synonyms: vec![
                "T cell".into(),
                "T-cell".into(),
                " ".into(),
                "T-cell".into(),
            ],
            parents: vec![
                ("CL:1".into(), "is_a".into()),
                ("CL:0".into(), "is_a".into()),
                ("CL:0".into(), "is_a".into()),
            ],
            ..Term::default()
        };
        t.tidy();
        assert_eq!(t.synonyms, vec!["T-cell".to_string()]);
        assert_eq!(t.parents, vec![("CL:0".to_string(), "is_a".to_string())]);
        assert_eq!(t.prefix(), "CL");
        let mut nameless = Term {
            ontology_id: "CL:2".into(),
            name: Some(String::new()),
            ..Term::default()
        };
        nameless.tidy();
        assert_eq!(nameless.name.as_deref(), Some("CL:2"));
    }
}
