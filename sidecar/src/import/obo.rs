//! OBO 1.4 files (e.g. hp.obo, cl.obo) read frame by frame with fastobo, so
//! memory stays bounded by one frame whatever the file size.

use std::io::BufRead;

use anyhow::{bail, Context};
use fastobo::ast::{Frame, SynonymScope, TermClause};
use fastobo::parser::{Parser, SequentialParser};

use super::term::Term;

/// What the header says about the file.
#[derive(Debug, Default, Clone)]
pub struct OboHeader {
    /// `ontology:` (e.g. hp).
    pub ontology: Option<String>,
    /// `data-version:` (e.g. hp/releases/2025-01-16 → the part after the last /).
    pub data_version: Option<String>,
}

/// The relations kept as hierarchy edges besides is_a: part_of, by name or BFO id.
fn hierarchy_relation(rel: &str) -> Option<&'static str> {
    match rel {
        "part_of" | "BFO:0000050" => Some("part_of"),
        _ => None,
    }
}

/// The ontology's short name: `ontology: hp`, else the first part of
/// `data-version: hp/releases/2025-01-16`.
fn ontology_name(h: &fastobo::ast::HeaderFrame) -> Option<String> {
    let named = h
        .ontology()
        .ok()
        .map(|s| s.as_str().trim_end_matches(".obo").to_lowercase());
    named.or_else(|| {
        let version = h.data_version().ok()?.as_str().to_string();
        let (first, _) = version.split_once('/')?;
        Some(first.to_lowercase())
    })
}

/// Only the header (name and version), without reading the terms.
pub fn read_header(input: impl BufRead, what: &str) -> anyhow::Result<OboHeader> {
    let mut parser = SequentialParser::new(input);
    match parser.next() {
        Some(Ok(Frame::Header(h))) => Ok(OboHeader {
            ontology: ontology_name(&h),
            data_version: h.data_version().ok().map(|s| {
                s.as_str()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            }),
        }),
        Some(Err(e)) => bail!("{what} is not valid OBO 1.4: {e}"),
        _ => Ok(OboHeader::default()),
    }
}

/// Read every [Term] frame and hand it to `emit`; other frames (typedefs,
/// instances) are skipped. A syntax error names the line.
pub fn read_obo(
    input: impl BufRead,
    what: &str,
    mut emit: impl FnMut(Term) -> anyhow::Result<()>,
) -> anyhow::Result<OboHeader> {
    let mut header = OboHeader::default();
    for frame in SequentialParser::new(input) {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => bail!("{what} is not valid OBO 1.4: {e}"),
        };
        match frame {
            Frame::Header(h) => {
                header.ontology = ontology_name(&h);
                header.data_version = h.data_version().ok().map(|s| {
                    s.as_str()
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                });
            }
            Frame::Term(t) => {
                let mut term = Term {
                    ontology_id: t.id().as_inner().to_string(),
                    ..Term::default()
                };
                for clause in t.clauses() {
                    match clause.as_inner() {
                        TermClause::Name(n) => term.name = Some(n.as_str().to_string()),
                        TermClause::Def(d) => {
                            term.description = Some(d.text().as_str().to_string())
                        }
                        TermClause::Synonym(s) => {
                            let text = s.description().as_str().to_string();
                            let is_abbr = s
                                .ty()
                                .is_some_and(|ty| ty.to_string().to_lowercase().contains("abbrev"));
                            if is_abbr && term.abbr.is_none() {
                                term.abbr = Some(text.clone());
                            }
                            // Broad and narrow synonyms name other concepts: left out.
                            if matches!(s.scope(), SynonymScope::Exact | SynonymScope::Related) {
                                term.synonyms.push(text);
                            }
                        }
                        TermClause::IsA(parent) => {
                            term.parents.push((parent.to_string(), "is_a".to_string()))
                        }
                        TermClause::Relationship(rel, target) => {
                            if let Some(kind) = hierarchy_relation(&rel.to_string()) {
                                term.parents.push((target.to_string(), kind.to_string()));
                            }
                        }
                        TermClause::IsObsolete(obsolete) => term.deprecated = *obsolete,
                        TermClause::ReplacedBy(by) => term.replaced_by = Some(by.to_string()),
                        _ => {}
                    }
                }
                term.tidy();
                emit(term).with_context(|| format!("{what}: cannot stage term"))?;
            }
            _ => {}
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "format-version: 1.4
data-version: hp/releases/2025-01-16
ontology: hp

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000118
name: Phenotypic abnormality
def: \"A phenotypic abnormality.\" [HPO:probinson]
synonym: \"Organ abnormality\" EXACT []
synonym: \"wide thing\" BROAD []
is_a: HP:0000001 ! All
relationship: part_of HP:0000001

[Term]
id: HP:0000002
name: obsolete thing
is_obsolete: true
replaced_by: HP:0000118

[Typedef]
id: part_of
name: part of
";

    #[test]
    fn reads_terms_synonyms_parents_and_obsoletes() {
        let mut terms = Vec::new();
        let header = read_obo(SAMPLE.as_bytes(), "sample", |t| {
            terms.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(header.ontology.as_deref(), Some("hp"));
        let unnamed = SAMPLE.replace("ontology: hp\n", "");
        let header = read_obo(unnamed.as_bytes(), "sample", |_| Ok(())).unwrap();
        assert_eq!(header.ontology.as_deref(), Some("hp"), "from data-version");
        assert_eq!(header.data_version.as_deref(), Some("2025-01-16"));
        assert_eq!(terms.len(), 3);
        let abn = &terms[1];
        assert_eq!(abn.ontology_id, "HP:0000118");
        assert_eq!(
            abn.description.as_deref(),
            Some("A phenotypic abnormality.")
        );
        assert_eq!(abn.synonyms, vec!["Organ abnormality".to_string()]);
        assert_eq!(
            abn.parents,
            vec![
                ("HP:0000001".to_string(), "is_a".to_string()),
                ("HP:0000001".to_string(), "part_of".to_string())
            ]
        );
        assert!(terms[2].deprecated);
        assert_eq!(terms[2].replaced_by.as_deref(), Some("HP:0000118"));
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let bad = SAMPLE.replace("is_a: HP:0000001 ! All", "is_a HP:0000001 ! All");
        let err = read_obo(bad.as_bytes(), "bad.obo", |_| Ok(())).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("bad.obo is not valid OBO 1.4"), "{msg}");
        assert!(msg.contains("15:"), "line number missing: {msg}");
    }
}
