use super::*;

/// The scan's bound: the smallest limit `text` passes.
fn bound(text: &str) -> usize {
    let (mut lo, mut hi) = (0, text.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        // `check` passes every text no longer than the limit: look at the scan itself.
        if Scan::new(text.as_bytes(), mid).run().is_ok() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

#[test]
fn flow_and_block_levels_add_up() {
    assert_eq!(bound("a: [[x]]"), 3);
    assert_eq!(bound("- - - x"), 3);
    assert_eq!(bound("- - [x, {a: [b]}]"), 5);
    assert_eq!(bound("a:\n  b:\n    c: [x]\n"), 4);
    // A flow collection that is a key is inside the mapping opened at its `:`.
    assert_eq!(bound("- [[x]]: y"), 4);
}

#[test]
fn levels_are_popped_at_less_indented_lines() {
    let siblings: String = (0..1000).map(|i| format!("k{i}:\n  - a: [1]\n")).collect();
    assert!(bound(&siblings) <= 5, "{}", bound(&siblings));
    let list: String = (0..1000)
        .map(|i| format!("- name: n{i}\n  value: [x]\n"))
        .collect();
    assert!(bound(&list) <= 4, "{}", bound(&list));
}

#[test]
fn brackets_in_scalars_and_comments_do_not_count() {
    let deep = "[".repeat(500);
    for text in [
        format!("a: '{deep}'"),
        format!("a: \"{deep}\\\"{deep}\""),
        format!("a: x {deep}"),
        format!("a: 1 # {deep}"),
        format!("a: |\n  x {deep}\n  y {deep}\nb: c"),
        format!("a: >-\n  x - - - {deep}\n\n  x\nb: c"),
        format!("a: !<{deep}> x"),
        format!("a: x\n  y {deep}\n"),
    ] {
        assert!(bound(&text) <= 3, "{} for {text:?}", bound(&text));
    }
    // Where a block scalar ends depends on indentation the scan does not track: a line of one
    // that libyaml would parse as YAML were the scalar over counts as such.
    assert!(bound(&format!("a: |\n  {deep}")) > 500);
}

#[test]
fn what_a_scalar_may_hide_still_counts() {
    let deep = "[".repeat(200);
    // A document marker ends a plain scalar; a plain scalar ends at `: `.
    assert!(bound(&format!("a: x\n--- {deep}")) > 199);
    assert!(bound(&format!("a x: {deep}")) > 199);
    // A comment needs a blank before it inside a plain scalar, not after a flow indicator.
    assert!(bound(&format!("a: x#{deep}")) <= 2);
    assert!(bound(&format!("[a,#]\n{deep}")) > 199);
    // An anchor, an alias or a closed quote give way to what follows.
    assert!(bound(&format!("[&a{deep}")) > 199);
    assert!(bound(&format!("['it''s'{deep}")) > 199);
    // A line of a quoted scalar at column 0 does not pop the levels around it.
    let text = format!("- - - - \"a\nb\"\n        {}x", "- ".repeat(130));
    assert!(bound(&text) > 130);
    // Nor does a comment line.
    let text = format!("- - - - x\n# c\n        {}x", "- ".repeat(130));
    assert!(bound(&text) > 130);
    // Unicode line breaks and a byte order mark.
    assert!(bound(&format!("a: x\u{85}{deep}")) > 199);
    assert!(bound(&format!("\u{feff}{deep}")) > 199);
}

#[test]
fn a_body_of_nesting_is_refused_in_its_first_lines() {
    let text = format!("a: {}", "[".repeat(3 << 20));
    assert_eq!(check(text.as_bytes(), 128), Err(TooDeep { line: 1 }));
    let text = format!("x: 1\ny: 2\n{}", "- ".repeat(1 << 20));
    assert_eq!(check(text.as_bytes(), 128), Err(TooDeep { line: 3 }));
}
