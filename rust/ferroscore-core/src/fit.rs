//! Whether an input schema fits its model: refused at registration when it would score
//! silently wrong — a column the model reads that no feature fills, a string vocabulary on a
//! column the model splits by threshold, a number on a column it splits by category, a
//! feature named differently from the model's column.

use crate::error::{escape_token, SchemaError};
use crate::model::Model;
use crate::schema::{Feature, Kind, Missing, Schema, CATEGORIES_KEYWORD, COLUMN_KEYWORD};

pub fn check_fit(schema: &Schema, model: &dyn Model) -> Result<(), SchemaError> {
    let n = model.n_features();
    let names = model.feature_names();
    let uses = model.column_uses();
    let at = |f: &Feature, k: &str| format!("/properties/{}/{k}", escape_token(&f.name));
    let mut bound = vec![false; n];
    for f in schema.features() {
        if f.column >= n {
            return Err(SchemaError::new(
                at(f, COLUMN_KEYWORD),
                format!(
                    "feature \"{}\" is bound to column {}, but the model reads {n} columns",
                    f.name, f.column
                ),
            ));
        }
        bound[f.column] = true;
        if let Some(model_name) = names.map(|names| &names[f.column]) {
            if *model_name != f.name {
                return Err(SchemaError::new(
                    at(f, COLUMN_KEYWORD),
                    format!("feature \"{}\" is bound to column {}, which the model calls \"{model_name}\"", f.name, f.column),
                ));
            }
        }
        let used = uses[f.column];
        match &f.kind {
            Kind::Categorical { .. } if used.numeric && !used.categorical => {
                return Err(SchemaError::new(
                    at(f, CATEGORIES_KEYWORD),
                    format!(
                        "feature \"{}\" is a string with category codes, but the model splits its column by numeric thresholds",
                        f.name
                    ),
                ));
            }
            Kind::Number { .. } if used.categorical => {
                return Err(SchemaError::new(
                    at(f, "type"),
                    format!(
                        "feature \"{}\" is typed as a number, but the model splits its column by category: \
                         declare it a \"string\" with \"{CATEGORIES_KEYWORD}\"",
                        f.name
                    ),
                ));
            }
            _ => {}
        }
    }
    if let Some(c) = (0..n).find(|&c| !bound[c] && uses[c].is_used()) {
        let name = names.map_or_else(
            || format!("column {c}"),
            |names| format!("\"{}\" (column {c})", names[c]),
        );
        return Err(SchemaError::new(
            "/properties",
            format!("the model reads {name} but no feature is bound to it, so it would always be missing"),
        ));
    }
    if !model.handles_missing() {
        let filled =
            |f: &Feature| matches!(f.missing, Missing::Default(_)) || (f.required && !f.nullable);
        if let Some(f) = schema.features().iter().find(|f| !filled(f)) {
            return Err(SchemaError::new(
                at(f, "type"),
                format!(
                    "a {} model cannot score a missing input: make \"{}\" required and not nullable, or give it a default",
                    model.format(),
                    f.name
                ),
            ));
        }
    }
    Ok(())
}
