//! The README's promises about the API, checked against the code: its error table is the
//! code table (every code, with its status, once).

use std::collections::BTreeMap;

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));

/// `code → status` from the rows of the README's "## Errors" table (`| 409 | `sold_out` | … |`).
fn readme_error_table() -> BTreeMap<String, u16> {
    let section = README
        .split("\n## Errors\n")
        .nth(1)
        .expect("README has an Errors section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut table = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (Ok(status), Some(code)) = (cells[1].parse::<u16>(), cells[2].strip_prefix('`')) else {
            continue; // the header and separator rows
        };
        let code = code.trim_end_matches('`').to_string();
        assert!(
            table.insert(code.clone(), status).is_none(),
            "{code} listed twice in the README"
        );
    }
    table
}

#[test]
fn the_readme_error_table_is_the_code_table() {
    let code_table: BTreeMap<String, u16> = taquilla_api::Code::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.status().as_u16()))
        .collect();
    assert_eq!(readme_error_table(), code_table);
}
