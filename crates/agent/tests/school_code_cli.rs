//! `lectern-agent school-code`: the code typed on the terminal (or given)
//! is checked for its form and saved where the service reads it; a wrong
//! one is refused with the form it should have and saves nothing.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(config: &std::path::Path, arg: Option<&str>, stdin: &str) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lectern-agent"));
    cmd.arg("school-code").arg("--config").arg(config);
    if let Some(a) = arg {
        cmd.arg(a);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_typed_code_is_checked_and_saved_for_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let code_file = dir.path().join("etc/schoolcode");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "school_code_file = {:?}\nstate_dir = {:?}\n",
            code_file,
            dir.path().join("state")
        ),
    )
    .unwrap();

    let out = run(&config, None, "not-a-code!\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only letters and digits") && err.contains("7KQ2M-XH4PD"),
        "{err}"
    );
    assert!(!code_file.exists(), "nothing saved");

    let out = run(&config, None, "  7kq2m xh4pd\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("School code: saved 7KQ2M-XH4PD in "),
        "{said}"
    );
    let saved = std::fs::read_to_string(&code_file).unwrap();
    assert!(saved.ends_with("\n7KQ2M-XH4PD\n"), "{saved}");

    // Given as an argument, with the confusable letters: read as digits.
    let out = run(&config, Some("7KQ2M-XH4PO"), "");
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&code_file)
        .unwrap()
        .ends_with("\n7KQ2M-XH4P0\n"));

    // `--add`: one more school, as a further line; the same code twice is
    // kept once.
    for _ in 0..2 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lectern-agent"));
        let out = cmd
            .args(["school-code", "--add", "h3rt9 wwq7c", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let saved = std::fs::read_to_string(&code_file).unwrap();
    assert!(saved.ends_with("\n7KQ2M-XH4P0\nH3RT9-WWQ7C\n"), "{saved}");
    assert_eq!(
        lectern_agent::schools::codes_in(&saved),
        [Some("7KQ2MXH4P0".into()), Some("H3RT9WWQ7C".into())]
    );
    // Without the computer's own school's code first, nothing is added.
    std::fs::remove_file(&code_file).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lectern-agent"))
        .args(["school-code", "--add", "h3rt9 wwq7c", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("own school"));
    assert!(!code_file.exists());
}
