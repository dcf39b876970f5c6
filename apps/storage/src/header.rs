//! Header-name helpers shared by the storage services.

/// Python's `str.title()` on a header name, as Swift stores and returns
/// metadata names: a letter after a non-letter is upper-cased, every other
/// letter lower-cased.
pub fn title(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_letter = false;
    for c in name.chars() {
        if c.is_alphabetic() {
            if prev_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::title;

    #[test]
    fn title_case_matches_python() {
        assert_eq!(title("x-object-meta-abc9def"), "X-Object-Meta-Abc9Def");
        assert_eq!(title("CONTENT-TYPE"), "Content-Type");
        assert_eq!(title("x-object-meta-a_b"), "X-Object-Meta-A_B");
        assert_eq!(title("gold"), "Gold");
    }
}
