//! `lbctl import ipvsadm FILE`: rules as ipvsadm-save writes them
//! (`-A -t VIP:PORT -s rr`, `-a -t VIP:PORT -r RIP:PORT -g -w 1`), read
//! with the same parser as `lbctl ipvsadm` and applied to an empty table.
//! Host and service names (ipvsadm-save without `-n`) are resolved. What
//! lbd lacks (thresholds, one-packet scheduling, other schedulers) becomes
//! a note, and so do fwmark services' members, which the rules do not say; a line that is not an
//! ipvsadm rule at all is an error with its line number.

use lb_api::config::Timeouts;

use super::{ErrorKind, ImportError, Imported, ImportedService, Loc, Note};
use crate::ipvsadm::rules;
use crate::ipvsadm::{self, Command, IpvsError, ServiceRef};

/// Converts the rules in `text` (from the file shown as `shown`).
pub fn import(text: &str, shown: &str) -> Result<Imported, ImportError> {
    let mut imp = Imported::default();
    let mut services = Vec::new();
    let mut timeouts = Timeouts::default();
    let mut timeouts_set = false;
    let mut origins: std::collections::HashMap<lb_api::protocol::ServiceKey, (Loc, String)> =
        std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let loc = Loc {
            file: shown.to_string(),
            line: n + 1,
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut words = ipvsadm::split_words(t)
            .ok_or_else(|| ImportError::at(&loc, ErrorKind::UnterminatedQuote))?;
        if words
            .first()
            .is_some_and(|w| w == "ipvsadm" || w.ends_with("/ipvsadm"))
        {
            words.remove(0);
        }
        for note in ipvsadm::dash_notes(&words) {
            imp.notes.push(Note::at(&loc, note));
        }
        let (cmd, dropped) = match ipvsadm::parse_lenient(&words) {
            Ok(x) => x,
            Err(e @ IpvsError::Unsupported { .. }) => {
                imp.notes.push(Note::at(&loc, format!("`{t}`: {e}")));
                continue;
            }
            Err(IpvsError::Usage(m)) => {
                return Err(ImportError::at(
                    &loc,
                    ErrorKind::NotARule {
                        why: m,
                        line: t.to_string(),
                    },
                ))
            }
        };
        for d in dropped {
            imp.notes.push(Note::at(
                &loc,
                format!("{d}; the rest of the line is converted"),
            ));
        }
        match rules::apply(&mut services, &mut timeouts, &cmd) {
            Ok(()) => match cmd {
                Command::AddService(spec) => {
                    let k = spec.service.key();
                    origins.insert(k, (loc.clone(), t.to_string()));
                    if let ServiceRef::Fwmark(m) = spec.service {
                        imp.notes.push(Note::at(
                            &loc,
                            format!(
                                "`{t}`: service group fwmark {m}: {}; until the configuration \
                                 has one for mark {m}, the group takes no packets",
                                ipvsadm::GROUP_MEMBERS
                            ),
                        ));
                    }
                }
                Command::SetTimeouts { .. } => timeouts_set = true,
                _ => {}
            },
            Err(e) => imp
                .notes
                .push(Note::at(&loc, format!("`{t}`: not applied: {e}"))),
        }
    }
    imp.services = services
        .into_iter()
        .map(|config| {
            let k = lb_api::protocol::ServiceKey::of(&config);
            let (origin, what) = origins.remove(&k).unwrap_or_else(|| {
                (
                    Loc {
                        file: shown.to_string(),
                        line: 0,
                    },
                    String::new(),
                )
            });
            ImportedService {
                config,
                origin,
                what,
            }
        })
        .collect();
    if timeouts_set {
        imp.timeouts = Some(lb_api::protocol::TimeoutEdit {
            tcp: Some(timeouts.tcp_established),
            tcpfin: Some(timeouts.tcp_fin_wait),
            udp: Some(timeouts.udp),
        });
    }
    Ok(imp)
}
