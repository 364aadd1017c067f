//! Placeholders in a kind file's strings: `{id}`, `{port.api}`, `{peers}`…, with `{{` and `}}` for literal
//! braces. A template is parsed once, when the file is loaded, so a misspelt placeholder is a load error that
//! names its line, never a node started with a literal `{idd}` in its flags.

use std::collections::BTreeMap;

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Hole(String),
}

/// A string with placeholders, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Why a template does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// A `{` with no `}` after it.
    Unclosed,
    /// A `}` with no `{` before it (write `}}` for a literal one).
    Stray,
    /// `{}`.
    Empty,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TemplateError::Unclosed => "a `{` is never closed (write `{{` for a literal brace)",
            TemplateError::Stray => "a `}` closes nothing (write `}}` for a literal brace)",
            TemplateError::Empty => "`{}` names no placeholder",
        })
    }
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut text_buf = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text_buf.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text_buf.push('}');
                }
                '}' => return Err(TemplateError::Stray),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => return Err(TemplateError::Unclosed),
                            Some(c) => name.push(c),
                        }
                    }
                    if name.trim().is_empty() {
                        return Err(TemplateError::Empty);
                    }
                    if !text_buf.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text_buf)));
                    }
                    pieces.push(Piece::Hole(name));
                }
                c => text_buf.push(c),
            }
        }
        if !text_buf.is_empty() {
            pieces.push(Piece::Text(text_buf));
        }
        Ok(Template { pieces })
    }

    /// The placeholder names it uses, in order.
    pub fn holes(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Hole(h) => Some(h.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Whether the whole template is the one placeholder `name` (`"{args}"`).
    pub fn is_only(&self, name: &str) -> bool {
        matches!(self.pieces.as_slice(), [Piece::Hole(h)] if h == name)
    }

    /// The text with every placeholder replaced from `values`. `Err` names a placeholder with no value (the
    /// loader checks names against what each field offers, so this means a value the caller did not supply).
    pub fn expand(&self, values: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole(h) => match values.get(h) {
                    Some(v) => out.push_str(v),
                    None => return Err(format!("no value for placeholder {{{h}}}")),
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_and_double_braces_are_literal() {
        let t = Template::parse("--x={id}:{port.api} {{json}}").unwrap();
        assert_eq!(t.holes().collect::<Vec<_>>(), ["id", "port.api"]);
        let values = BTreeMap::from([
            ("id".to_string(), "3".to_string()),
            ("port.api".to_string(), "7001".to_string()),
        ]);
        assert_eq!(t.expand(&values).unwrap(), "--x=3:7001 {json}");
    }

    #[test]
    fn broken_templates_say_what_is_wrong() {
        assert_eq!(Template::parse("{id"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("id}"), Err(TemplateError::Stray));
        assert_eq!(Template::parse("{}"), Err(TemplateError::Empty));
        assert!(Template::parse("{args}").unwrap().is_only("args"));
        assert!(
            Template::parse("{id}")
                .unwrap()
                .expand(&BTreeMap::new())
                .unwrap_err()
                .contains("{id}")
        );
    }
}
