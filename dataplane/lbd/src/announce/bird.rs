//! The BGP speaker's view of its sessions: `birdc -s SOCKET show
//! protocols`, parsed. The parser is pure (tested on captured output); the
//! query runs birdc, BIRD's own client, so lbd depends on nothing but its
//! documented command line.

use std::process::{Command, Stdio};

use lbcore::api::BgpSession;

/// The BGP rows of `show protocols` output. Other protocols (device,
/// kernel, BFD) and the banner and header lines are skipped. Columns:
/// `Name Proto Table State Since Info`, where Since is a time (`20:14:13.845`)
/// or, for older events, a date and maybe a time, and Info the rest of the
/// line (`Established`, `Active  Socket: Connection refused`).
pub fn parse_protocols(text: &str) -> Vec<BgpSession> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(proto), Some(_table), Some(state)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if proto != "BGP" {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        // Since: one word, or a date followed by a time.
        if !rest.is_empty() {
            let date = rest[0].len() == 10 && rest[0].as_bytes()[4] == b'-';
            rest.remove(0);
            if date
                && rest
                    .first()
                    .is_some_and(|w| w.contains(':') && w.as_bytes()[0].is_ascii_digit())
            {
                rest.remove(0);
            }
        }
        out.push(BgpSession {
            name: name.to_string(),
            state: state.to_string(),
            info: rest.join(" "),
        });
    }
    out
}

/// Ask the speaker at `socket`. The error says why it could not be asked
/// (birdc missing, socket unreachable), in birdc's words when it has some.
pub fn query(socket: &str) -> Result<Vec<BgpSession>, String> {
    let out = Command::new("birdc")
        .args(["-s", socket, "show", "protocols"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run birdc: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("BIRD") {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = if said.trim().is_empty() { text } else { said };
        return Err(said
            .trim()
            .lines()
            .next()
            .unwrap_or("birdc failed")
            .to_string());
    }
    Ok(parse_protocols(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from BIRD 2.0.12 (`birdc show protocols`), plus a session
    /// whose Since column carries a date.
    const CAPTURED: &str = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     20:14:13.845  
k1         Kernel     master4    up     20:14:13.845  
up1        BGP        ---        down   20:14:13.850  Error: Invalid next hop
router     BGP        ---        up     20:31:02.117  Established   
r2         BGP        ---        start  2026-12-01 23:59:59  Active        Socket: Connection refused
bfd1       BFD        ---        up     20:14:13.845  
";

    #[test]
    fn bgp_rows_with_state_and_info() {
        let s = parse_protocols(CAPTURED);
        let rows: Vec<(&str, &str, &str)> = s
            .iter()
            .map(|b| (b.name.as_str(), b.state.as_str(), b.info.as_str()))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("up1", "down", "Error: Invalid next hop"),
                ("router", "up", "Established"),
                ("r2", "start", "Active Socket: Connection refused"),
            ]
        );
    }

    #[test]
    fn nothing_from_garbage_or_an_empty_answer() {
        assert!(parse_protocols("").is_empty());
        assert!(parse_protocols("BIRD 2.0.12 ready.\nNo protocols match\n").is_empty());
    }
}
