//! One-pass substitution of `{{name}}` placeholders in the console's HTML.
//!
//! Each placeholder is looked up once and its value written out; the output
//! is never scanned again, so a value that itself contains `{{other}}` stays
//! as written (escaped) instead of being substituted a second time.

use crate::console::escape;

/// A value for a placeholder.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// Text: HTML-escaped on the way in.
    Text(&'a str),
    /// Markup the server itself produced (a page's content, a fixed
    /// fragment), inserted as it is. Never user input.
    Markup(&'a str),
}

/// Why a template could not be filled; a bug in the page or its caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder no value was given for.
    #[error("template placeholder {{{{{0}}}}} has no value")]
    Unknown(String),
    /// `{{` with no `}}` after it.
    #[error("template has an unclosed placeholder at byte {0}")]
    Unclosed(usize),
}

/// Fills `template`'s placeholders from `vars` in a single scan.
pub fn fill(template: &str, vars: &[(&str, Value<'_>)]) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or(TemplateError::Unclosed(template.len() - rest.len() + start))?;
        let name = after[..end].trim();
        match vars.iter().find(|(k, _)| *k == name) {
            Some((_, Value::Text(v))) => out.push_str(&escape(v)),
            Some((_, Value::Markup(v))) => out.push_str(v),
            None => return Err(TemplateError::Unknown(name.to_owned())),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{fill, TemplateError, Value};

    #[test]
    fn substitutes_and_escapes() {
        let out = fill(
            "<p>{{a}} and {{ b }}</p>",
            &[("a", Value::Text("<x>")), ("b", Value::Markup("<i>y</i>"))],
        );
        assert_eq!(out.unwrap(), "<p>&lt;x&gt; and <i>y</i></p>");
    }

    #[test]
    fn a_value_holding_a_placeholder_is_not_substituted_again() {
        let vars = [
            ("school", Value::Text("{{user}}")),
            ("user", Value::Text("alice")),
            ("frag", Value::Markup("<b>{{user}}</b>")),
        ];
        let out = fill("{{school}}|{{user}}|{{frag}}", &vars).unwrap();
        assert_eq!(out, "{{user}}|alice|<b>{{user}}</b>");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_errors() {
        assert_eq!(
            fill("x {{nope}} y", &[("a", Value::Text("1"))]),
            Err(TemplateError::Unknown("nope".into()))
        );
        assert_eq!(fill("ab {{a", &[]), Err(TemplateError::Unclosed(3)));
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        assert_eq!(fill("a { b } c", &[]).unwrap(), "a { b } c");
    }
}
