//! The loader's checks: every kind of mistake names its file, line and field.

use super::*;

const SQUALL: &str = include_str!("../../kinds/squall.toml");

fn parse(text: &str) -> Result<Kind, KindError> {
    Kind::parse(text, Source::File(PathBuf::from("my.toml")))
}

/// The squall kind with `from` replaced by `to` (which must occur once).
fn edited(from: &str, to: &str) -> String {
    assert_eq!(
        SQUALL.matches(from).count(),
        1,
        "`{from}` occurs once in kinds/squall.toml"
    );
    SQUALL.replacen(from, to, 1)
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).expect("needle")]
        .matches('\n')
        .count()
        + 1
}

#[test]
fn the_builtin_squall_kind_loads() {
    let k = Kind::builtin("squall").unwrap();
    assert_eq!(k.name, "squall");
    assert_eq!(k.ports, ["peer", "api"]);
    assert_eq!(
        k.ready,
        Ready::AddrFile(Template::parse("{node_dir}/addr.json").unwrap())
    );
    assert_eq!(
        k.join_args.len(),
        k.launch_args.len() + 1,
        "join form = launch form + --join"
    );
    assert!(k.membership.is_some());
    assert!(k.limit("clock").is_none());
}

#[test]
fn an_unknown_field_names_its_line() {
    let text = edited("separator = \",\"", "separator = \",\"\nseperator = \";\"");
    let e = parse(&text).unwrap_err();
    assert_eq!(
        e.line_col.map(|l| l.0),
        Some(line_of(&text, "seperator")),
        "{e}"
    );
    assert!(e.to_string().starts_with("my.toml:"), "{e}");
    assert!(e.message.contains("unknown field `seperator`"), "{e}");
}

#[test]
fn an_unknown_placeholder_names_its_line_and_field() {
    let text = edited("\"--seed\", \"{seed}\"", "\"--seed\", \"{sede}\"");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("launch.args"), "{e}");
    assert_eq!(
        e.line_col.map(|l| l.0),
        Some(line_of(&text, "{sede}")),
        "{e}"
    );
    assert!(e.message.contains("unknown placeholder {sede}"), "{e}");
    assert!(
        e.message.contains("{seed}"),
        "the known ones are listed: {e}"
    );
}

#[test]
fn a_peer_placeholder_outside_the_entry_is_unknown() {
    let e = parse(&edited("\"--id\", \"{id}\"", "\"--id\", \"{peer_id}\"")).unwrap_err();
    assert!(e.message.contains("unknown placeholder {peer_id}"), "{e}");
}

#[test]
fn unknown_protocol_framing_and_classifier_are_refused() {
    for (from, to, field, word) in [
        (
            "[status]\nprotocol = \"squall\"",
            "[status]\nprotocol = \"grpc\"",
            "status.protocol",
            "grpc",
        ),
        (
            "[client]\nprotocol = \"squall\"",
            "[client]\nprotocol = \"redis\"",
            "client.protocol",
            "redis",
        ),
        (
            "framing = \"length-prefixed\"",
            "framing = \"lines\"",
            "peers.framing",
            "lines",
        ),
        (
            "classifier = \"squall-raft\"",
            "classifier = \"paxos\"",
            "peers.classifier",
            "paxos",
        ),
        (
            "model = \"per-sender\"",
            "model = \"mesh\"",
            "peers.model",
            "mesh",
        ),
    ] {
        let text = edited(from, to);
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
        assert_eq!(
            e.line_col.map(|l| l.0),
            Some(line_of(&text, &format!("\"{word}\""))),
            "{e}"
        );
        assert!(
            e.message.contains(&format!("`{word}`")) && e.message.contains("known"),
            "{e}"
        );
    }
}

#[test]
fn an_http_json_status_without_its_table_is_refused_naming_it() {
    // Every driver name the format knows is built now; a generic driver without the table that describes the
    // node's answers is the mistake left to name.
    let text = SQUALL.replacen(
        "[status]\nprotocol = \"squall\"",
        "[status]\nprotocol = \"http-json\"",
        1,
    );
    assert_ne!(text, SQUALL, "the squall kind has a [status] protocol line");
    let e = parse(&text).unwrap_err();
    assert!(
        e.field.as_deref().is_some_and(|f| f.starts_with("status")) && e.message.contains("http"),
        "{e}"
    );
}

#[test]
fn a_port_used_but_not_declared_is_refused() {
    let text = edited("port = \"peer\"", "port = \"raft\"");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("peers.port"), "{e}");
    assert!(
        e.message.contains("`raft` is not declared") && e.message.contains("api, peer"),
        "{e}"
    );
    let text = edited(
        "\"{host}:0\",\n    \"--api-listen\"",
        "\"{host}:{port.raft}\",\n    \"--api-listen\"",
    );
    let e = parse(&text).unwrap_err();
    assert!(e.message.contains("{port.raft} uses port `raft`"), "{e}");
}

#[test]
fn ports_in_args_and_an_addr_file_do_not_mix() {
    let text = edited(
        "\"{host}:0\",\n    \"--api-listen\"",
        "\"{host}:{port.peer}\",\n    \"--api-listen\"",
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("launch.ready"), "{e}");
}

#[test]
fn a_missing_program_says_the_hint() {
    let text = edited(
        "program = \"{squall}\"",
        "program = \"no-such-raft-node-here\"",
    )
    .replacen(
        "missing = \"build squall: cargo build --release\"",
        "missing = \"install it: apt-get install no-such\"",
        1,
    );
    let k = parse(&text).unwrap();
    let e = k.program_path().unwrap_err();
    assert_eq!(e.field.as_deref(), Some("program"), "{e}");
    assert_eq!(
        e.line_col.map(|l| l.0),
        Some(line_of(&text, "program =")),
        "{e}"
    );
    assert!(
        e.message
            .contains("`no-such-raft-node-here` is not on PATH"),
        "{e}"
    );
    assert!(e.message.contains("apt-get install no-such"), "{e}");
    let k = parse(&edited(
        "program = \"{squall}\"",
        "program = \"/nonexistent/node\"",
    ))
    .unwrap();
    assert!(
        k.program_path()
            .unwrap_err()
            .message
            .contains("/nonexistent/node does not exist")
    );
}

#[test]
fn limits_take_known_families_with_a_reason() {
    let text = format!("{SQUALL}\n[limits]\nclock = \"Go reads the clock through the vDSO\"\n");
    assert_eq!(
        parse(&text).unwrap().limit("clock"),
        Some("Go reads the clock through the vDSO")
    );
    let e = parse(&format!("{SQUALL}\n[limits]\nweather = \"no\"\n")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("limits"), "{e}");
    assert!(e.message.contains("unknown fault family `weather`"), "{e}");
}

/// F21: the files `disk N flip` never picks at random; squall's own kinds name their lock and markers.
#[test]
fn not_data_takes_relative_paths_inside_the_data_directory() {
    let with = |v: &str| edited("not_data = [", &format!("not_data = [{v}, "));
    let k = parse(&with("\"run/pid\"")).unwrap();
    assert_eq!(k.not_data[0], std::path::PathBuf::from("run/pid"));
    for bad in ["../LOCK", "/var/LOCK", ""] {
        let e = parse(&with(&format!("\"{bad}\""))).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("disk.not_data"), "{bad}: {e}");
        assert!(e.message.contains("relative"), "{e}");
    }
    for name in ["squall", "paxos"] {
        let k = Kind::builtin(name).unwrap();
        assert!(
            k.not_data.contains(&"LOCK".into()),
            "{name}: {:?}",
            k.not_data
        );
    }
}

#[test]
fn a_kind_that_is_not_a_file_or_a_builtin_is_named() {
    let e = Kind::load("/nonexistent/kind.toml").unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/kind.toml") && e.message.contains("squall"),
        "{e}"
    );
}

#[test]
fn the_squall_kind_fills_its_command_line() {
    let k = Kind::builtin("squall").unwrap();
    let facts = launch::NodeFacts {
        id: 2,
        cluster_id: "squall-00ab".into(),
        node_dir: PathBuf::from("/c/node-2"),
        data_dir: PathBuf::from("/c/node-2/data"),
        initial_state: launch::InitialState::New,
        seed: 9,
        election_timeout: (
            std::time::Duration::from_millis(150),
            std::time::Duration::from_millis(300),
        ),
        heartbeat: std::time::Duration::from_millis(50),
        snapshot_every: 500,
        peers: vec![
            (1, "127.0.0.1:4001".parse().unwrap()),
            (3, "127.0.0.1:4003".parse().unwrap()),
        ],
        ports: BTreeMap::new(),
        join: true,
        options: vec!["no-pre-vote".into()],
        host: "10.0.0.2".parse().unwrap(),
    };
    let args: Vec<String> = k
        .command_line(&facts)
        .unwrap()
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect();
    let at = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
    assert_eq!(at("--peers"), "1=127.0.0.1:4001,3=127.0.0.1:4003");
    assert_eq!(at("--election-timeout"), "150ms..300ms");
    assert_eq!(at("--addr-file"), "/c/node-2/addr.json");
    assert_eq!(at("--initial-state"), "new");
    // `{host}`: the node's ports bind to its host's address (issue 24).
    assert_eq!(at("--listen"), "10.0.0.2:0");
    assert_eq!(at("--api-listen"), "10.0.0.2:0");
    assert!(
        args.ends_with(&["--join".to_string(), "--no-pre-vote".to_string()]),
        "{args:?}"
    );
    assert_eq!(
        k.addr_file(&facts),
        Some(PathBuf::from("/c/node-2/addr.json"))
    );
    let e = k
        .command_line(&launch::NodeFacts {
            options: vec!["turbo".into()],
            ..facts
        })
        .unwrap_err();
    assert!(e.contains("no option `turbo`"), "{e}");
}

#[test]
fn toml_errors_name_their_field() {
    let text = "name = \"x\"\n[launch]\nargs = []\ncommand = \"y\"\n";
    let at = text.find("command").unwrap();
    assert_eq!(
        super::field_at(text, at, "unknown field `command`, expected one of `args`"),
        Some("launch.command".to_string())
    );
    assert_eq!(
        super::field_at(
            text,
            text.find("[launch]").unwrap(),
            "missing field `ready`"
        ),
        Some("launch.ready".to_string())
    );
    assert_eq!(
        super::field_at(text, 0, "missing field `program`"),
        Some("program".to_string())
    );
    assert_eq!(
        super::field_at(text, text.find("args").unwrap(), "invalid type"),
        Some("launch.args".to_string())
    );
}

const OPENRAFT: &str = include_str!("../../examples/openraft-kv/openraft.toml");

#[test]
fn membership_over_http_json_loads_and_its_mistakes_name_the_field() {
    let kind = parse(OPENRAFT).unwrap();
    let m = kind.membership_http.as_ref().expect("[membership.http]");
    assert_eq!(m.voters, "committed_members");
    assert!(kind.membership_driver().is_ok());

    // A placeholder the request cannot fill.
    let text = OPENRAFT.replacen(
        "addr = \"{peer}\" } }\npromote",
        "addr = \"{proxy}\" } }\npromote",
        1,
    );
    assert_ne!(text, OPENRAFT);
    let e = parse(&text).unwrap_err();
    assert_eq!(
        e.field.as_deref(),
        Some("membership.http.add_learner.body.addr"),
        "{e}"
    );
    assert!(
        e.message.contains("{proxy}") && e.message.contains("{id}, {peer}"),
        "{e}"
    );

    // The table is required by the http-json driver, and refused by any other.
    let without = OPENRAFT
        .split("[membership.http]")
        .next()
        .unwrap()
        .to_string();
    let e = parse(&without).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("membership.http"), "{e}");
    let other = OPENRAFT.replacen(
        "[membership]\n# add, remove",
        "[membership]\nprotocol_ = 1\n# add, remove",
        1,
    );
    assert!(parse(&other).is_err());
}

#[test]
fn etcd_refuses_wipe_freeze_and_clock_faults_citing_its_file() {
    let etcd = Kind::builtin("etcd").unwrap();
    let t = crate::command::Target::Node(2);
    let wipe = etcd
        .refuses(&crate::command::Command::Wipe(t))
        .expect("wipe is refused");
    assert!(
        wipe.contains("old member id")
            && wipe.contains("`remove N`, then `add`")
            && wipe.contains("[limits] wipe in kinds/etcd.toml"),
        "{wipe}"
    );
    let freeze = etcd
        .refuses(&crate::command::Command::Freeze)
        .expect("freeze is refused");
    assert!(freeze.contains("kinds/etcd.toml"), "{freeze}");
    let clock = crate::command::parse("clock 1 +5s").unwrap();
    let clock = etcd.refuses(&clock).expect("clock faults are refused");
    assert!(
        clock.contains("vDSO") && clock.contains("[limits] clock in kinds/etcd.toml"),
        "{clock}"
    );
    let demote = etcd
        .refuses(&crate::command::Command::Demote(2))
        .expect("demote is refused");
    assert!(demote.contains("kinds/etcd.toml"), "{demote}");
    // squall's own node wipes (it rejoins as a node that lost its data).
    let squall = Kind::builtin("squall").unwrap();
    assert_eq!(squall.refuses(&crate::command::Command::Wipe(t)), None);
    assert_eq!(squall.refuses(&crate::command::Command::Freeze), None);
}
