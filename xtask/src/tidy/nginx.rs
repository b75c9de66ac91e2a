//! Rules for nginx/nginx.conf.template: nginx drops a server's `add_header` lines in any
//! location with its own, so every server and location block includes the security headers;
//! and every `${...}` placeholder is one the renderers fill in (an `NGINX_` name).

use super::read;

/// The opening lines of `server` and `location` blocks, with the blocks' bodies up to the
/// first nested block or the end, as (header line, body) pairs.
fn blocks(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim_end())
        .collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if !(trimmed.starts_with("server {") || trimmed.starts_with("location "))
            || !trimmed.ends_with('{')
        {
            continue;
        }
        let mut depth = 0;
        let mut body = String::new();
        for inner in &lines[index..] {
            depth += inner.matches('{').count() as i32;
            depth -= inner.matches('}').count() as i32;
            body.push_str(inner);
            body.push('\n');
            if depth <= 0 {
                break;
            }
        }
        found.push((trimmed.to_owned(), body));
    }
    found
}

/// Every rule the template breaks.
pub fn problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (header, body) in blocks(text) {
        // The catch-all servers answer nothing (444, or a refused handshake).
        let drops = body.contains("return 444;") || body.contains("ssl_reject_handshake on;");
        if !drops && !body.contains("include snippets/security-headers.conf;") {
            problems.push(format!(
                "`{header}` does not include snippets/security-headers.conf"
            ));
        }
    }
    for (start, _) in text.match_indices("${") {
        let name: String = text[start + 2..]
            .chars()
            .take_while(|c| *c != '}')
            .collect();
        let is_setting = name.starts_with("NGINX_")
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !is_setting && name != "NGINX_..." {
            problems.push(format!(
                "${{{name}}} is not an NGINX_ setting the renderers fill in"
            ));
        }
    }
    problems
}

#[test]
fn the_nginx_template_follows_the_rules() {
    let text = read("nginx/nginx.conf.template").expect("read nginx/nginx.conf.template");
    let problems = problems(&text);
    assert!(
        problems.is_empty(),
        "nginx/nginx.conf.template:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        blocks(&text).len() >= 8,
        "the template's blocks were not found"
    );
}

#[test]
fn the_rules_catch_what_they_name() {
    let text = "server {\n    listen 80;\n    include snippets/security-headers.conf;\n    location / {\n        add_header X-Thing 1;\n    }\n}\nserver {\n    return 444;\n}\nroot ${ROOT};\n";
    assert_eq!(
        problems(text),
        [
            "`location / {` does not include snippets/security-headers.conf".to_owned(),
            "${ROOT} is not an NGINX_ setting the renderers fill in".to_owned(),
        ]
    );
}
