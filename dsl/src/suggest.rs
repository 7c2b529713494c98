//! "Did you mean …?": the one helper that picks the closest known name to a misspelled one.

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub fn closest<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let distance = strsim::damerau_levenshtein(&lower, &candidate.to_lowercase());
        // Allow about one edit per three characters, and always at least one.
        let limit = (name.chars().count().max(candidate.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_near_misses() {
        assert_eq!(closest("simlar", ["similar", "draft"]).as_deref(), Some("similar"));
        assert_eq!(closest("timout", ["timeout", "when"]).as_deref(), Some("timeout"));
    }

    #[test]
    fn ignores_far_names() {
        assert_eq!(closest("zzz", ["similar", "draft"]), None);
    }

    #[test]
    fn prefers_the_closest() {
        assert_eq!(closest("item", ["items", "itemz2", "it"]).as_deref(), Some("items"));
    }
}
