//! Resources: which table is which `ResourceEnum` value.

use std::fmt;

/// ION's webhookable resources, used when no resource is configured.
pub(crate) const DEFAULT_RESOURCES: &[&str] = &[
    "RUNS",
    "RUN_STEPS",
    "PARTS",
    "PART_INVENTORY",
    "ISSUES",
    "PURCHASE_ORDERS",
    "PURCHASE_ORDER_LINES",
    "RECEIPTS",
    "RECEIPT_ITEMS",
    "PROCEDURES",
    "STEPS",
    "SUPPLIERS",
    "PLANS",
    "PLAN_ITEMS",
    "PLAN_INPUTS",
    "ORGANIZATIONS",
    "FILE_ATTACHMENTS",
    "ABOM_INSTALLATIONS",
];

/// One resource and, when captured, its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resource {
    /// The `ResourceEnum` value, e.g. `RUNS`.
    pub(crate) name: String,
    /// The captured table (`table` or `schema.table`), if any.
    pub(crate) table: Option<String>,
}

/// Why a resource mapping is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceError(pub(crate) String);

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResourceError {}

/// Checks a resource name: a GraphQL enum value in upper snake case.
pub(crate) fn check_name(name: &str) -> Result<(), ResourceError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ResourceError(format!(
            "resource name `{name}` must be UPPER_SNAKE_CASE (A-Z, 0-9, _; starting with a letter; at most 64 characters)"
        )))
    }
}

/// Checks a table reference: `table` or `schema.table`, plain identifiers.
pub(crate) fn check_table(table: &str) -> Result<(), ResourceError> {
    let parts: Vec<&str> = table.split('.').collect();
    let ident_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if (1..=2).contains(&parts.len()) && parts.iter().all(|p| ident_ok(p)) {
        Ok(())
    } else {
        Err(ResourceError(format!(
            "table `{table}` must be `table` or `schema.table` made of letters, digits and _"
        )))
    }
}

/// Parses `NAME=TABLE`.
pub(crate) fn parse_mapping(spec: &str) -> Result<Resource, ResourceError> {
    let (name, table) = spec.split_once('=').ok_or_else(|| {
        ResourceError(format!(
            "resource mapping `{spec}` must be NAME=TABLE, e.g. RUNS=runs"
        ))
    })?;
    let (name, table) = (name.trim(), table.trim());
    check_name(name)?;
    check_table(table)?;
    Ok(Resource {
        name: name.to_string(),
        table: Some(table.to_string()),
    })
}

/// The configured resources, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resources {
    list: Vec<Resource>,
}

impl Resources {
    /// Builds the set from mappings; with none, ION's default set without tables.
    pub(crate) fn new(mappings: Vec<Resource>) -> Result<Self, ResourceError> {
        if mappings.is_empty() {
            return Ok(Resources {
                list: DEFAULT_RESOURCES
                    .iter()
                    .map(|n| Resource {
                        name: (*n).to_string(),
                        table: None,
                    })
                    .collect(),
            });
        }
        let mut list: Vec<Resource> = Vec::new();
        for m in mappings {
            if list.iter().any(|r| r.name == m.name) {
                return Err(ResourceError(format!(
                    "resource `{}` is mapped twice",
                    m.name
                )));
            }
            list.push(m);
        }
        Ok(Resources { list })
    }

    /// All resources.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.list.iter()
    }

    /// Resource names, for `ResourceEnum`.
    pub(crate) fn names(&self) -> Vec<String> {
        self.list.iter().map(|r| r.name.clone()).collect()
    }

    /// Looks a resource up by its enum name.
    pub(crate) fn get(&self, name: &str) -> Option<&Resource> {
        self.list.iter().find(|r| r.name == name)
    }

    /// Resources with a table to capture.
    pub(crate) fn captured(&self) -> impl Iterator<Item = &Resource> {
        self.list.iter().filter(|r| r.table.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_checked() {
        assert_eq!(
            parse_mapping("RUNS=runs").unwrap().table.as_deref(),
            Some("runs")
        );
        assert_eq!(
            parse_mapping("RUN_STEPS = app.run_steps").unwrap().name,
            "RUN_STEPS"
        );
        assert!(parse_mapping("runs=runs").is_err());
        assert!(parse_mapping("RUNS").is_err());
        assert!(parse_mapping("RUNS=runs; drop table x").is_err());
        assert!(parse_mapping("RUNS=a.b.c").is_err());
        let dup = Resources::new(vec![
            parse_mapping("A=a").unwrap(),
            parse_mapping("A=b").unwrap(),
        ]);
        assert!(dup.is_err());
    }

    #[test]
    fn default_set_is_ion_like() {
        let r = Resources::new(vec![]).unwrap();
        assert_eq!(r.names().len(), 18);
        assert!(r.get("RUN_STEPS").is_some());
        assert_eq!(r.captured().count(), 0);
    }
}
