//! Configuration: the RON file format ([`types`]), loading and parsing
//! ([`load`], [`parse`]), meaning checks ([`validate()`]), error messages that
//! point at the line and column ([`error`], [`locate`]), and writing a
//! configuration back out ([`to_ron_string`]).
//!
//! ```text
//! configs/lab.ron:23:17: services[1].real_servers[0].weight: weight 70000 is out of range (0 to 65535)
//! ```

pub mod bgp;
mod ecmp;
pub mod error;
mod facts;
mod groups;
pub mod locate;
pub mod routing;
pub mod types;
pub mod validate;

use std::path::Path;

pub use bgp::BgpConfig;
pub use error::{ConfigError, Problem};
pub use types::*;
pub use validate::{
    check_cpus, format_core_list, lcores_mapping_cpus, parse_lcore_list, parse_lcores_mapping,
    validate,
};

/// Reads, parses and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: origin.clone(),
        source,
    })?;
    parse_file_text(&text, path)
}

/// [`load`] for text already read from the file at `path`: parsed,
/// validated, and checked against where the file is (the control socket
/// must not be the file itself).
pub fn parse_file_text(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    parse_checked(text, &origin, |cfg| {
        validate::check_config_location(cfg, path)
    })
}

/// Parses and validates configuration text. `origin` (usually the file name)
/// starts every message. Validation problems get the line and column of the
/// field they are about, or of the nearest enclosing element written in the
/// text when the field itself was left to its default.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_checked(text, origin, |_| Vec::new())
}

/// [`parse`], with `more` checks (those that need to know where the file
/// is) after [`validate()`]'s; their problems are located the same way.
fn parse_checked(
    text: &str,
    origin: &str,
    more: impl FnOnce(&Config) -> Vec<Problem>,
) -> Result<Config, ConfigError> {
    let cfg: Config = ron::Options::default()
        .from_str(text)
        .map_err(|e| syntax_error(&e, origin))?;
    let mut problems = validate(&cfg);
    problems.extend(more(&cfg));
    if problems.is_empty() {
        return Ok(cfg);
    }
    locate_problems(text, &mut problems);
    Err(ConfigError::Invalid {
        origin: origin.to_string(),
        problems,
    })
}

/// Fills in the line and column of each problem from `text`: the field's
/// own, or that of the nearest enclosing element written in the text.
pub fn locate_problems(text: &str, problems: &mut [Problem]) {
    // One locator for all problems: the text is tokenised once, however
    // many problems there are.
    let locator = locate::Locator::new(text);
    for p in problems {
        if let Some(loc) = locator.locate_or_parent(&p.field) {
            p.line = Some(loc.line);
            p.column = Some(loc.column);
        }
    }
}

/// Writes `cfg` as pretty RON: every field, in declaration order, four-space
/// indents. The result parses back (with [`parse`]) to an equal `Config`
/// when `cfg` is valid.
pub fn to_ron_string(cfg: &Config) -> String {
    let pretty = ron::ser::PrettyConfig::new()
        .indentor("    ")
        .new_line("\n")
        .struct_names(false)
        .separate_tuple_members(false)
        .enumerate_arrays(false);
    let mut s = ron::Options::default()
        .to_string_pretty(cfg, pretty)
        .expect("a Config always serialises to RON");
    s.push('\n');
    s
}

/// Turns RON's error into [`ConfigError::Syntax`], adding a hint when RON's
/// own words are not enough.
fn syntax_error(e: &ron::error::SpannedError, origin: &str) -> ConfigError {
    let mut message = e.code.to_string();
    if let Some(h) = hint(&e.code) {
        message.push_str(" (hint: ");
        message.push_str(&h);
        message.push(')');
    }
    ConfigError::Syntax {
        origin: origin.to_string(),
        line: e.span.start.line,
        column: e.span.start.col,
        message,
    }
}

const SCHEDULER_HELP: &str = "valid schedulers are Rr (round robin), Wrr (weighted round robin), \
                              Lc (least connection), Wlc (weighted least connection), \
                              Sh (source hashing), Mh (Maglev hashing), \
                              Sed (shortest expected delay), Nq (never queue) \
                              and Fo (weighted failover)";

fn hint(code: &ron::Error) -> Option<String> {
    use ron::Error as E;
    match code {
        E::NoSuchEnumVariant {
            expected, found, ..
        } => {
            let base = if *expected == ["Rr", "Wrr", "Lc", "Wlc", "Sh", "Mh", "Sed", "Nq", "Fo"] {
                SCHEDULER_HELP.to_string()
            } else if *expected == ["Tcp", "Udp"] {
                "valid protocols are Tcp and Udp".to_string()
            } else if *expected == ["Dr"] {
                "only Dr (direct routing) is supported so far".to_string()
            } else {
                format!("valid names are {}", expected.join(", "))
            };
            Some(
                match expected.iter().find(|x| x.eq_ignore_ascii_case(found)) {
                    Some(right) => format!("names are case-sensitive: write {right}; {base}"),
                    None => base,
                },
            )
        }
        E::NoSuchStructField {
            expected, found, ..
        } => expected
            .iter()
            .filter(|x| edit_distance(x, found) <= 2 || x.eq_ignore_ascii_case(found))
            .min_by_key(|x| edit_distance(x, found))
            .map(|x| format!("did you mean `{x}`?")),
        E::ExpectedComma => Some(
            "a comma is probably missing just before this point, after the previous field or \
             list element"
                .into(),
        ),
        E::ExpectedStructLikeEnd | E::ExpectedArrayEnd | E::ExpectedMapEnd => Some(
            "is a comma missing between two fields or list elements, or a closing bracket \
             missing?"
                .into(),
        ),
        E::IntegerOutOfBounds => Some(
            "the number is too large (or negative) for this field; port numbers go up to 65535"
                .into(),
        ),
        E::ExpectedOption => Some("optional values are written Some(value) or None".into()),
        E::ExpectedString => Some(
            "names, devices and addresses are written in double quotes, e.g. \"198.18.0.2/24\""
                .into(),
        ),
        E::Eof => Some("the text ends too early; is a closing bracket missing?".into()),
        E::TrailingCharacters => {
            Some("there is text after the end of the configuration's outer `( ... )`".into())
        }
        E::UnclosedBlockComment => Some("a `/*` comment is never closed with `*/`".into()),
        _ => None,
    }
}

/// Levenshtein distance, for "did you mean" hints on short field names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::PathBuf;

    fn configs_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
    }

    fn config_files() -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(configs_dir())
            .expect("configs/ exists")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "ron"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn config_example_files_are_valid() {
        let files = config_files();
        assert!(
            files.len() >= 3,
            "expected the example files, found {files:?}"
        );
        for f in files {
            if let Err(e) = load(&f) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn config_example_files_round_trip() {
        for f in config_files() {
            let cfg = load(&f).unwrap();
            let text = to_ron_string(&cfg);
            let back = parse(&text, "round-trip").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, cfg, "{}", f.display());
            // Stable: writing again gives the same text.
            assert_eq!(to_ron_string(&back), text);
        }
    }

    #[test]
    fn config_lab_file_content() {
        let cfg = load(&configs_dir().join("lab-dr-rr.ron")).unwrap();
        assert_eq!(cfg.eal.cores, "0-1");
        assert!(cfg.eal.no_huge && cfg.eal.no_pci);
        assert_eq!(cfg.eal.memory_mb, Some(512));
        assert_eq!(cfg.eal.file_prefix.as_deref(), Some("lbd-lab"));
        assert_eq!(cfg.ports.len(), 1);
        assert_eq!(cfg.ports[0].name, "lan0");
        assert_eq!(cfg.ports[0].device, "net_af_packet0,iface=eth0");
        assert_eq!(cfg.ports[0].address, "198.18.0.2/24".parse().unwrap());
        assert_eq!(cfg.services.len(), 1);
        let s = &cfg.services[0];
        assert_eq!(
            (s.vip, s.port, s.protocol),
            (
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
                80,
                Protocol::Tcp
            )
        );
        assert_eq!(s.scheduler, Scheduler::Rr);
        let rs: Vec<_> = s
            .real_servers
            .iter()
            .map(|r| (r.address, r.weight, r.forward))
            .collect();
        assert_eq!(
            rs,
            vec![
                (Ipv4Addr::new(198, 18, 0, 11).into(), 1, Forward::Dr),
                (Ipv4Addr::new(198, 18, 0, 12).into(), 1, Forward::Dr)
            ]
        );

        let wlc = load(&configs_dir().join("lab-dr-wlc.ron")).unwrap();
        assert_eq!(wlc.services[0].scheduler, Scheduler::Wlc);
        let w: Vec<u32> = wlc.services[0]
            .real_servers
            .iter()
            .map(|r| r.weight)
            .collect();
        assert_eq!(w, vec![3, 1]);
        assert_eq!(wlc.ports, cfg.ports);
        assert_eq!(wlc.eal, cfg.eal);
    }

    #[test]
    fn config_two_box_examples_are_valid_and_mirror_each_other() {
        let a = load(&configs_dir().join("two-box-a.ron")).unwrap();
        let b = load(&configs_dir().join("two-box-b.ron")).unwrap();
        assert_eq!(a.services, b.services, "the same service on both boxes");
        let (va, vb) = (a.vrrp.clone().unwrap(), b.vrrp.clone().unwrap());
        assert_eq!(va.vrid, vb.vrid);
        assert!(va.priority > vb.priority);
        assert_eq!(a.sync.unwrap().peer, b.ports[0].address.addr);
        assert_eq!(b.sync.unwrap().peer, a.ports[0].address.addr);
        // Each box's real servers are the two boxes' own addresses.
        let rs: Vec<_> = a.services[0]
            .real_servers
            .iter()
            .map(|r| r.address)
            .collect();
        assert_eq!(rs, vec![a.ports[0].address.addr, b.ports[0].address.addr]);
        assert_eq!(a.peer_directors.len(), 1);
        assert_eq!(b.peer_directors.len(), 1);
    }

    #[test]
    fn config_full_example_shows_every_default() {
        let cfg = load(&configs_dir().join("example-full.ron")).unwrap();
        assert_eq!(cfg.eal.cores, "0-2");
        assert!(!cfg.eal.no_huge);
        assert_eq!(cfg.ports[0].device, "0000:3b:00.0");
        assert_eq!(cfg.workers.queues_per_port, 2);
        assert_eq!(cfg.conn_table, ConnTableConfig::default());
        assert_eq!(cfg.timeouts, Timeouts::default());
        assert_eq!(cfg.neighbours, NeighbourConfig::default());
        assert_eq!(cfg.workers.burst, WorkersConfig::default().burst);
        assert_eq!(cfg.workers.mbufs, WorkersConfig::default().mbufs);
        // Every field of the format is written out in the file.
        let text = std::fs::read_to_string(configs_dir().join("example-full.ron")).unwrap();
        let written = to_ron_string(&cfg);
        for line in written.lines() {
            if let Some((name, _)) = line.trim().split_once(':') {
                assert!(
                    text.contains(&format!("{name}:")),
                    "example-full.ron does not show `{name}`"
                );
            }
        }
    }

    #[test]
    fn config_round_trip_of_a_busy_config() {
        let text = r#"(
            eal: (cores: "0-4", no_huge: true, memory_mb: Some(64), file_prefix: Some("a \"b\""),
                  no_pci: true, extra_args: ["--log-level=8", "x,y"]),
            ports: [
                (name: "p0", device: "net_null0", address: "10.0.0.1/24", mac: Some("02:00:00:00:00:01")),
                (name: "p1", device: "net_null1", address: "10.0.1.1/24"),
            ],
            workers: (queues_per_port: 2, burst: 16, mbufs: 4095),
            conn_table: (capacity: 4096),
            timeouts: (tcp_established: 1, udp: 2073600),
            neighbours: (refresh: 1, expire: 2),
            services: [
                (vip: "10.9.9.9", port: 53, protocol: Udp, scheduler: Lc,
                 real_servers: [(address: "10.0.0.5", port: Some(53), weight: 0), (address: "10.0.1.5", weight: 65535)]),
                (vip: "10.9.9.9", port: 53, scheduler: Wrr),
            ],
        )"#;
        let cfg = parse(text, "busy").unwrap();
        let out = to_ron_string(&cfg);
        assert_eq!(parse(&out, "out").unwrap(), cfg);
        assert!(
            out.starts_with("(\n    eal: (\n        cores: \"0-4\","),
            "{out}"
        );
    }

    #[track_caller]
    fn syntax(text: &str) -> (usize, usize, String) {
        match parse(text, "t.ron") {
            Err(ConfigError::Syntax {
                origin,
                line,
                column,
                message,
            }) => {
                assert_eq!(origin, "t.ron");
                let full = parse(text, "t.ron").unwrap_err().to_string();
                assert_eq!(full, format!("t.ron:{line}:{column}: {message}"));
                (line, column, message)
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    const LAB: &str = r#"(
    ports: [
        (name: "lan0", device: "net_af_packet0,iface=eth0", address: "198.18.0.2/24"),
    ],
    services: [
        (vip: "198.18.0.100", port: 80, scheduler: Rr),
    ],
)
"#;

    #[test]
    fn config_syntax_missing_comma() {
        let (line, column, msg) =
            syntax(&LAB.replace("    ],\n    services", "    ]\n    services"));
        assert_eq!((line, column), (5, 5));
        assert!(msg.contains("Expected comma"), "{msg}");
        assert!(msg.contains("hint: a comma is probably missing"), "{msg}");
    }

    #[test]
    fn config_syntax_unknown_field() {
        let (line, column, msg) = syntax(&LAB.replace("scheduler: Rr", "sheduler: Rr"));
        assert_eq!((line, column), (6, 41));
        assert!(msg.contains("Unexpected field named `sheduler`"), "{msg}");
        assert!(msg.contains("did you mean `scheduler`?"), "{msg}");
        let (_, _, msg) = syntax(&LAB.replace("scheduler: Rr", "colour: Rr"));
        assert!(!msg.contains("did you mean"), "{msg}");
        let (line, column, msg) =
            syntax(&LAB.replace("(\n    ports", "(\n    port: [],\n    ports"));
        assert_eq!((line, column), (2, 5));
        assert!(msg.contains("did you mean `ports`?"), "{msg}");
    }

    #[test]
    fn config_syntax_unknown_scheduler() {
        let (line, column, msg) = syntax(&LAB.replace("scheduler: Rr", "scheduler: Foo"));
        assert_eq!((line, column), (6, 52));
        assert!(msg.contains("`Foo`"), "{msg}");
        assert!(
            msg.contains("valid schedulers are Rr (round robin), Wrr (weighted round robin), Lc (least connection), Wlc (weighted least connection), Sh (source hashing), Mh (Maglev hashing), Sed (shortest expected delay), Nq (never queue) and Fo (weighted failover)"),
            "{msg}"
        );
        let (_, _, msg) = syntax(&LAB.replace("scheduler: Rr", "scheduler: wlc"));
        assert!(msg.contains("names are case-sensitive: write Wlc"), "{msg}");
        let (_, _, msg) = syntax(&LAB.replace("scheduler: Rr", "protocol: Sctp"));
        assert!(msg.contains("valid protocols are Tcp and Udp"), "{msg}");
    }

    #[test]
    fn config_syntax_bad_values() {
        let (line, _, msg) = syntax(&LAB.replace("/24", "/33"));
        assert_eq!(line, 3);
        assert!(
            msg.contains("prefix `33` is not a number from 0 to 32"),
            "{msg}"
        );
        let (line, column, msg) = syntax(&LAB.replace("port: 80", "port: 80000"));
        assert_eq!((line, column), (6, 37));
        assert!(msg.contains("out of bounds"), "{msg}");
        let (_, _, msg) = syntax(&LAB.replace("\"198.18.0.100\"", "198.18.0.100"));
        assert!(msg.contains("double quotes"), "{msg}");
        let (_, _, msg) = syntax(&LAB.replace("port: 80, ", ""));
        assert!(msg.contains("missing field named `port`"), "{msg}");
        let (_, _, msg) = syntax(&format!("{LAB}x"));
        assert!(msg.contains("trailing"), "{msg}");
        let (_, _, msg) = syntax(&LAB[..LAB.len() - 3]);
        assert!(msg.contains("closing bracket"), "{msg}");
        let (_, _, msg) = syntax("/* (ports: [])");
        assert!(msg.contains("never closed"), "{msg}");
        let (_, _, msg) = syntax("");
        assert!(!msg.is_empty());
    }

    #[test]
    fn config_load_reports_the_path() {
        let missing = Path::new("/nonexistent/lbd/none.ron");
        let e = load(missing).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }));
        assert!(
            e.to_string()
                .starts_with("/nonexistent/lbd/none.ron: cannot read the configuration file: "),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn config_edit_distance() {
        assert_eq!(edit_distance("scheduler", "sheduler"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    proptest! {
        #[test]
        fn config_parse_never_panics(text in "\\PC*") {
            let _ = parse(&text, "fuzz");
        }

        #[test]
        fn config_parse_never_panics_on_damaged_files(
            cut in 0usize..2000,
            len in 0usize..40,
            insert in "[()\\[\\]{}:,\"'/*a-z0-9 \n.-]{0,6}",
        ) {
            // Damage a real file: replace a slice with some RON-ish characters.
            let text = std::fs::read_to_string(configs_dir().join("example-full.ron")).unwrap();
            let mut start = cut.min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let damaged = format!("{}{}{}", &text[..start], insert, &text[end..]);
            if let Err(e) = parse(&damaged, "fuzz") {
                let _ = e.to_string();
            }
        }

        #[test]
        fn config_problems_are_located_or_unlocated_never_panicking(weight in 0u32..200_000, port in 0u16..3) {
            let text = LAB.replace(
                "scheduler: Rr)",
                &format!("real_servers: [(address: \"198.18.0.11\", weight: {weight}, port: Some({port}))])"),
            );
            match parse(&text, "t.ron") {
                Ok(_) => prop_assert!(weight <= 65535 && port == 80),
                Err(e) => {
                    for p in e.problems() {
                        prop_assert!(p.line.is_some() && p.column.is_some());
                    }
                }
            }
        }
    }
}
