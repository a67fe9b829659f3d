//! Starting helper programs (URL opener, logout, `pactl`) directly, never
//! through a shell: the URL comes from the network, so it must stay one argument.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lectern_desktop::DesktopError;

/// Splits a configured command line into arguments: whitespace separates them,
/// single or double quotes group them, a backslash escapes the next character.
/// Nothing else is interpreted (no variables, globs or pipes).
pub fn split_argv(s: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_arg = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                cur.push(chars.next().ok_or("trailing backslash")?);
                in_arg = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_arg = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_arg {
                    args.push(std::mem::take(&mut cur));
                    in_arg = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_arg = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_arg {
        args.push(cur);
    }
    Ok(args)
}

/// `name` found in a directory of `$PATH`, if it is there.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn command(argv: &[String]) -> Result<Command, DesktopError> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| DesktopError::Failed("empty command configured".into()))?;
    let mut cmd = Command::new(prog);
    cmd.args(args).stdin(Stdio::null());
    Ok(cmd)
}

/// Waits for `child` at most `limit`; `None` when it is still running.
fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// Reaps `child` on a thread of its own so it does not linger as a zombie.
fn reap_later(mut child: Child) {
    std::thread::spawn(move || {
        let _ = child.wait();
    });
}

/// Runs `argv` to completion within `limit`, failing with its error output.
pub fn run(argv: &[String], limit: Duration) -> Result<(), DesktopError> {
    let mut cmd = command(argv)?;
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DesktopError::Failed(format!("cannot start {}: {e}", argv[0])))?;
    let Some(status) = wait_for(&mut child, limit) else {
        reap_later(child);
        return Err(DesktopError::Failed(format!(
            "{} did not finish within {} s",
            argv[0],
            limit.as_secs()
        )));
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let err: String = err.trim().chars().take(200).collect();
    Err(DesktopError::Failed(format!(
        "{} failed ({status}){}{err}",
        argv[0],
        if err.is_empty() { "" } else { ": " }
    )))
}

/// Starts `argv` plus `arg` with `DISPLAY` set and does not wait for it (a
/// browser may run for hours); a failure within `grace` is still reported.
pub fn launch(
    argv: &[String],
    arg: &str,
    display: &str,
    grace: Duration,
) -> Result<(), DesktopError> {
    let mut cmd = command(argv)?;
    let mut child = cmd
        .arg(arg)
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| DesktopError::Failed(format!("cannot start {}: {e}", argv[0])))?;
    match wait_for(&mut child, grace) {
        Some(st) if !st.success() => Err(DesktopError::Failed(format!(
            "{} failed ({st})",
            Path::new(&argv[0]).display()
        ))),
        Some(_) => Ok(()),
        None => {
            reap_later(child);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_careful_shell() {
        assert_eq!(split_argv("xdg-open").unwrap(), vec!["xdg-open"]);
        assert_eq!(
            split_argv(r#"  pkill -TERM -s "12 3" 'a b'\ c  "#).unwrap(),
            vec!["pkill", "-TERM", "-s", "12 3", "a b c"]
        );
        assert_eq!(split_argv(r#"a "" b"#).unwrap(), vec!["a", "", "b"]);
        assert_eq!(
            split_argv("echo $HOME;rm").unwrap(),
            vec!["echo", "$HOME;rm"]
        );
        assert!(split_argv("'open").is_err());
        assert!(split_argv("").unwrap().is_empty());
    }

    #[test]
    fn runs_without_a_shell() {
        let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        assert!(run(&sh("exit 0"), Duration::from_secs(5)).is_ok());
        let e = run(&sh("echo nope >&2; exit 3"), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(run(&["/nonexistent/x".into()], Duration::from_secs(1)).is_err());
        assert!(run(&sh("sleep 5"), Duration::from_millis(50)).is_err());
    }
}
