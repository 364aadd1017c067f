//! A small typed HTML builder that escapes by construction: element names, attribute names and class names
//! are `&'static str` from this crate's code, and every piece of data (a fault's label, a check's report, a
//! cluster id) enters through [`Html::text`], which escapes it. There is no way to append a `String` as
//! markup except an [`Svg`], which only the chart module makes (from `plotters`, which escapes its own text).
//!
//! Chosen over a templating crate (askama, maud) because the report is one page built in one function: a
//! few dozen lines give the one property wanted (no unescaped data, checked by the type system) without a
//! proc-macro dependency and a second language for templates.

/// HTML markup under construction.
#[derive(Default)]
pub struct Html(String);

/// An SVG document drawn by the chart module, inserted as markup as it is.
pub struct Svg(pub(super) String);

impl Html {
    /// An empty fragment.
    pub fn new() -> Html {
        Html::default()
    }

    /// Markup written in this crate's source: a doctype, a style sheet, a fixed phrase.
    pub fn markup(mut self, fixed: &'static str) -> Html {
        self.0.push_str(fixed);
        self
    }

    /// Text, escaped (`&`, `<`, `>`, `"`, `'`).
    pub fn text(mut self, s: impl AsRef<str>) -> Html {
        for c in s.as_ref().chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                c => self.0.push(c),
            }
        }
        self
    }

    /// An element with an optional class, its body built by `body`, and a line break after it.
    pub fn el(
        mut self,
        tag: &'static str,
        class: Option<&'static str>,
        body: impl FnOnce(Html) -> Html,
    ) -> Html {
        self.0.push('<');
        self.0.push_str(tag);
        if let Some(c) = class {
            self.0.push_str(" class=\"");
            self.0.push_str(c);
            self.0.push('"');
        }
        self.0.push('>');
        self = body(self);
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    /// An element whose body is escaped text.
    pub fn el_text(self, tag: &'static str, text: impl AsRef<str>) -> Html {
        self.el(tag, None, |h| h.text(text))
    }

    /// A table row of text cells (`th` or `td`).
    pub fn row<S: AsRef<str>>(
        self,
        cell: &'static str,
        cells: impl IntoIterator<Item = S>,
    ) -> Html {
        self.el("tr", None, |mut h| {
            for c in cells {
                h = h.el_text(cell, c);
            }
            h
        })
    }

    /// A chart.
    pub fn svg(mut self, svg: Svg) -> Html {
        self.0.push_str(&svg.0);
        self
    }

    /// A line break in the source (for people reading it).
    pub fn nl(mut self) -> Html {
        self.0.push('\n');
        self
    }

    /// Appends another fragment.
    pub fn append(mut self, other: Html) -> Html {
        self.0.push_str(&other.0);
        self
    }

    /// The markup.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_escaped_wherever_it_goes() {
        let evil = "<script>alert('x')</script> & \"q\"";
        let h = Html::new()
            .el("p", Some("bad"), |h| h.text(evil))
            .row("td", [evil])
            .into_string();
        assert!(!h.contains("<script>"), "{h}");
        assert_eq!(
            h,
            "<p class=\"bad\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</p>\
             <tr><td>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</td></tr>"
        );
    }
}
