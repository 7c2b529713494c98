//! Every pattern the recognizers search with, by name. The build script compiles each into a
//! forward and a reverse DFA (regex-automata) and serializes them into `OUT_DIR`; at run time a
//! pattern is deserialized where it lies in the binary, without copying or compiling. A plugin
//! instance lives for one call, so compiling these patterns at run time — tens of milliseconds
//! with their Unicode classes — would be paid on every call; this way it is paid once, by the
//! build. This file is shared by the build script (`#[path]`) and the crate.
//!
//! The DFAs find leftmost-first matches as the `regex` crate does. They cannot express Unicode
//! word boundaries or capture groups: boundaries here are ASCII (`(?-u:\b)`), and groups are
//! read from the match by the recognizer.

/// The patterns, by name.
pub fn all() -> Vec<(&'static str, String)> {
    let month = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?";
    // Any run without spaces, digits or sentence punctuation.
    let word = r"[^\s\d,;:!?()<>\[\]{}\x22]+";
    let number = r"[0-9]{1,5}[a-zA-Z]?";
    let english = r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl|square|sq|terrace|close|crescent|parkway|pkwy|highway|hwy|circle|cir|trail|alley|row|walk|gardens|mews";
    let glued = r"straat|strasse|straße|str|gasse|weg|laan|plein|gracht|kade|singel|gatan|vägen|gränd|torget|vej|gade|veien|gata|katu|tie|utca|útja|ulica|allee|platz|ring|damm|ufer|gürtel|steig|park";
    let before = r"rue|via|viale|calle|avenida|av|rua|praça|plaza|piazza|chemin|allée|boulevard|quai|impasse|carrer|paseo|ulica|ul|aleja|al|πλατεία|οδός|leoforos";
    vec![
        // `\w` is Unicode-aware: internationalised addresses (`jöhn@exämple.com`) count too. The
        // top-level domain's 63-letter limit is checked after the match.
        ("email", r"[\w.%+\-]+@\w(?:[\w\-]*\w)?(?:\.\w(?:[\w\-]*\w)?)*\.[^\W\d_][^\W\d_]+".into()),
        ("url", r#"(?i)(?-u:\b)(?:https?://|ftp://|www\.)[^\s<>"'`]+"#.into()),
        ("ipv4", r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)".into()),
        ("ipv6", r"(?i)(?:[0-9a-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-f]{1,4})?".into()),
        (
            "phone",
            r"(?i)(?:(?:\+|(?-u:\b)00)[1-9][0-9]{0,2}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,4}(?:[ .\-]?[0-9]{1,4}){1,6}(?:\s?(?:x|ext\.?|extension)\s?[0-9]{1,6})?".into(),
        ),
        // Runs of digits with single spaces or dashes between them; the recognizer picks the
        // card number out of a run (a counted repetition here makes a DFA of megabytes).
        ("digit_run", r"(?-u:\b)[0-9](?:[ \-]?[0-9])*(?-u:\b)".into()),
        ("iban", r"(?i)(?-u:\b)[a-z]{2}[0-9]{2}(?: ?[a-z0-9]){11,30}".into()),
        ("us_ssn", r"(?-u:\b)[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}(?-u:\b)".into()),
        ("phone_extension", r"(?i)\s?(?:x|ext\.?|extension)\s?[0-9]{1,6}$".into()),
        (
            "date_iso",
            r"(?-u:\b)[12][0-9]{3}-[0-9]{2}-[0-9]{2}(?:[T ][0-2][0-9]:[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?(?:Z|[+\-][0-2][0-9]:?[0-5][0-9])?)?(?-u:\b)".into(),
        ),
        ("date_numeric", r"(?-u:\b)[0-9]{1,2}[/.][0-9]{1,2}[/.](?:[12][0-9]{3}|[0-9]{2})(?-u:\b)".into()),
        (
            "date_words",
            format!(
                r"(?i)(?-u:\b)(?:[0-3]?[0-9](?:st|nd|rd|th)?\s+(?:of\s+)?{month},?\s+[12][0-9]{{3}}|{month}\s+[0-3]?[0-9](?:st|nd|rd|th)?,?\s+[12][0-9]{{3}}|{month}\s+[12][0-9]{{3}})(?-u:\b)"
            ),
        ),
        ("driver_license", r"(?-u:\b)(?:[A-Za-z][0-9]{4,14}|[A-Za-z]{2}[0-9]{5,12}|[0-9]{7,9})(?-u:\b)".into()),
        ("passport", r"(?-u:\b)(?:[0-9]{9}|[A-Za-z][0-9]{8})(?-u:\b)".into()),
        ("btc_base58", r"(?-u:\b)[13][1-9A-HJ-NP-Za-km-z]{25,34}(?-u:\b)".into()),
        ("btc_bech32", r"(?i)(?-u:\b)bc1[02-9ac-hj-np-z]{11,71}(?-u:\b)".into()),
        ("eth", r"(?-u:\b)0x[0-9a-fA-F]{40}(?-u:\b)".into()),
        ("date", r"^(?:[0-9]{4}[./\-][0-9]{1,2}[./\-][0-9]{1,2}|[0-9]{1,2}[./\-][0-9]{1,2}[./\-][0-9]{2,4})$".into()),
        // `221B Baker Street`, `23 8 Wressle Road`, `230 Wit Rd`
        ("street_0", format!(r"(?-u:\b)(?:{number}\s+){{1,2}}(?:{word}\s+){{0,4}}(?i:{english})(?-u:\b)\.?")),
        // `Nassaustraat 123`, `Weblinger Gürtel 92`, `árpád fejedelem útja 45.`
        (
            "street_1",
            format!(
                r"(?-u:\b)(?:{number}\s+)?(?:{word}\s+){{0,3}}[^\s\d,;:!?()<>\[\]{{}}\x22]*(?i:{glued})\.?\s+{number}(?-u:\b)\.?"
            ),
        ),
        // `107 Rue Abdelaziz Thâalbi`, `Πλατεία Μαβίλη 170`
        ("street_2", format!(r"(?-u:\b)(?:{number}\s+)?(?i:{before})\.?\s+(?:{word}\s*){{1,4}}?(?:\s{number}(?-u:\b))?")),
        // `46 velký průhon 426`, `87 Jakobi 69`: a number, one to three words, a number.
        ("street_3", format!(r"(?-u:\b){number}\s+(?:{word}\s+){{1,3}}{number}(?-u:\b)")),
        (
            "unit",
            r"(?i)(?-u:\b)(?:apt|apartment|suite|ste|unit|flat|room|floor|po box|p\.o\. box)\.?\s*#?\s*[0-9]{1,5}[a-z]?(?-u:\b)".into(),
        ),
        // The post code itself is the digits at the end of the match.
        (
            "post_code_after_label",
            r"(?i)(?-u:\b)(?:zip|zip code|postal code|postcode|post code)\s*:?\s*[0-9]{4,6}(?:-[0-9]{4})?(?-u:\b)".into(),
        ),
        ("unit_start", r"^(?i:apt|apartment|suite|ste|unit)\.?[ \t]*#?[ \t]*[0-9]{1,5}[a-zA-Z]?".into()),
        (
            "org_partners",
            r"(?-u:\b)\p{Lu}[\p{Ll}\p{M}]+(?:, \p{Lu}[\p{Ll}\p{M}]+)* and \p{Lu}[\p{Ll}\p{M}]+(?-u:\b)".into(),
        ),
    ]
}
