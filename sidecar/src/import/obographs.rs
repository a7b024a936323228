//! OBO Graphs JSON (`cl.json` from an ontology's release page): nodes with
//! labels, definitions, synonyms and deprecation; edges with predicates.
//! Read whole (these files are tens of MB); very large ontologies are better
//! imported from OBO or the cellxgene files, which stream.

use std::collections::HashMap;
use std::io::BufRead;

use serde::Deserialize;

use super::term::Term;

#[derive(Deserialize)]
struct Document {
    graphs: Vec<Graph>,
}

#[derive(Deserialize)]
struct Graph {
    #[serde(default)]
    nodes: Vec<Node>,
    #[serde(default)]
    edges: Vec<Edge>,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    lbl: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    meta: Option<Meta>,
}

#[derive(Deserialize, Default)]
struct Meta {
    definition: Option<Value>,
    #[serde(default)]
    synonyms: Vec<Synonym>,
    #[serde(default)]
    deprecated: bool,
    #[serde(default, rename = "basicPropertyValues")]
    properties: Vec<Property>,
}

#[derive(Deserialize)]
struct Value {
    val: Option<String>,
}

#[derive(Deserialize)]
struct Synonym {
    pred: Option<String>,
    val: Option<String>,
}

#[derive(Deserialize)]
struct Property {
    pred: Option<String>,
    val: Option<String>,
}

#[derive(Deserialize)]
struct Edge {
    sub: String,
    pred: String,
    obj: String,
}

/// `http://purl.obolibrary.org/obo/CL_0000000` → `CL:0000000`; CURIEs stay.
pub fn curie(id: &str) -> String {
    match id.strip_prefix("http://purl.obolibrary.org/obo/") {
        Some(local) => match local.split_once('_') {
            Some((prefix, rest)) => format!("{prefix}:{rest}"),
            None => local.to_string(),
        },
        None => id.to_string(),
    }
}

fn relation(pred: &str) -> Option<&'static str> {
    match pred {
        "is_a" => Some("is_a"),
        "http://purl.obolibrary.org/obo/BFO_0000050" | "part_of" | "BFO:0000050" => Some("part_of"),
        _ => None,
    }
}

/// Every class node of every graph, with its is_a / part_of parents.
pub fn read_obographs(
    input: impl BufRead,
    what: &str,
    mut emit: impl FnMut(Term) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let doc: Document = serde_json::from_reader(input)
        .map_err(|e| anyhow::anyhow!("{what}: not a valid OBO Graphs JSON file: {e}"))?;
    let mut count = 0;
    for graph in doc.graphs {
        let mut parents: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for e in graph.edges {
            if let Some(rel) = relation(&e.pred) {
                parents
                    .entry(curie(&e.sub))
                    .or_default()
                    .push((curie(&e.obj), rel.to_string()));
            }
        }
        for node in graph.nodes {
            if node.kind.as_deref().is_some_and(|k| k != "CLASS") {
                continue;
            }
            let id = curie(&node.id);
            let meta = node.meta.unwrap_or_default();
            let replaced_by = meta
                .properties
                .iter()
                .find(|p| {
                    p.pred
                        .as_deref()
                        .is_some_and(|p| p.ends_with("IAO_0100001"))
                })
                .and_then(|p| p.val.as_deref().map(curie));
            let mut term = Term {
                parents: parents.remove(&id).unwrap_or_default(),
                ontology_id: id,
                name: node.lbl,
                synonyms: meta
                    .synonyms
                    .into_iter()
                    .filter(|s| {
                        matches!(
                            s.pred.as_deref(),
                            Some("hasExactSynonym" | "hasRelatedSynonym")
                        )
                    })
                    .filter_map(|s| s.val)
                    .collect(),
                description: meta.definition.and_then(|d| d.val),
                abbr: None,
                deprecated: meta.deprecated,
                replaced_by,
            };
            term.tidy();
            emit(term)?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nodes_and_edges() {
        let doc = r#"{"graphs":[{"nodes":[
            {"id":"http://purl.obolibrary.org/obo/CL_0000000","lbl":"cell","type":"CLASS"},
            {"id":"http://purl.obolibrary.org/obo/CL_0000084","lbl":"T cell","type":"CLASS",
             "meta":{"definition":{"val":"A lymphocyte."},
                     "synonyms":[{"pred":"hasExactSynonym","val":"T-cell"},{"pred":"hasBroadSynonym","val":"x"}]}},
            {"id":"http://purl.obolibrary.org/obo/RO_0002202","lbl":"develops from","type":"PROPERTY"}],
          "edges":[{"sub":"http://purl.obolibrary.org/obo/CL_0000084","pred":"is_a","obj":"http://purl.obolibrary.org/obo/CL_0000000"},
                   {"sub":"http://purl.obolibrary.org/obo/CL_0000084","pred":"http://purl.obolibrary.org/obo/RO_0002202","obj":"http://purl.obolibrary.org/obo/CL_0000000"}]}]}"#;
        let mut terms = Vec::new();
        assert_eq!(
            read_obographs(doc.as_bytes(), "g", |t| {
                terms.push(t);
                Ok(())
            })
            .unwrap(),
            2
        );
        assert_eq!(terms[1].ontology_id, "CL:0000084");
        assert_eq!(terms[1].synonyms, vec!["T-cell".to_string()]);
        assert_eq!(terms[1].description.as_deref(), Some("A lymphocyte."));
        assert_eq!(
            terms[1].parents,
            vec![("CL:0000000".to_string(), "is_a".to_string())]
        );
    }
}
