//! Validation of mapping documents, validity windows and time formats.
use super::*;

fn rules() -> Rules {
    Rules {
        pin_digits: 5..=11,
        echo_pin: Pin::new("00000"),
        servers: vec!["bbb1".into(), "bbb2".into()],
        reserved: [Pin::new("8675309").unwrap()].into_iter().collect(),
    }
}

fn doc(pin: &str, conference: &str) -> MappingDoc {
    MappingDoc {
        pin: Some(pin.into()),
        conference: Some(conference.into()),
        ..MappingDoc::default()
    }
}

#[test]
fn validation_names_field_and_reason() {
    let cases: Vec<(MappingDoc, &str)> = vec![
        (doc("12a45", "71234"), "pin"),
        (doc("1234", "71234"), "pin"),
        (doc("00000", "71234"), "pin"),
        (doc("8675309", "71234"), "pin"),
        (doc("123456", "7123"), "conference"),
        (doc("123456", ""), "conference"),
        (
            MappingDoc {
                meeting_id: Some("m".into()),
                ..doc("123456", "71234")
            },
            "meeting_id",
        ),
        (
            MappingDoc {
                server: Some("nope".into()),
                ..doc("123456", "71234")
            },
            "server",
        ),
        (
            MappingDoc {
                valid_from: Some("tomorrow".into()),
                ..doc("123456", "71234")
            },
            "valid_from",
        ),
        (
            MappingDoc {
                valid_from: Some("2026-09-02T00:00:00Z".into()),
                valid_until: Some("2026-09-01T00:00:00Z".into()),
                ..doc("123456", "71234")
            },
            "valid_until",
        ),
        (
            MappingDoc {
                label: Some("two\nlines".into()),
                ..doc("123456", "71234")
            },
            "label",
        ),
    ];
    for (d, field) in cases {
        let errors = rules().validate(&d, None).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, field, "{errors:?}");
        let text = errors[0].to_string();
        assert!(
            !text.contains("71234") && !text.contains("123456"),
            "{text}"
        );
    }
}

#[test]
fn valid_documents() {
    let m = rules()
        .validate(
            &MappingDoc {
                server: Some("bbb2".into()),
                label: Some("Room 1".into()),
                valid_until: Some("2030-01-01T00:00:00Z".into()),
                ..doc("123456", "71234")
            },
            None,
        )
        .unwrap();
    assert_eq!(m.pin.expose(), "123456");
    assert_eq!(
        m.target,
        Target::Conference {
            conference: ConferenceId("71234".into()),
            server: Some("bbb2".into())
        }
    );
    assert_eq!(m.valid_until, Some(1_893_456_000));
    let meeting = MappingDoc {
        meeting_id: Some("random-123".into()),
        ..MappingDoc::default()
    };
    let m = rules().validate(&meeting, Some("55501")).unwrap();
    assert!(matches!(m.target, Target::Meeting { .. }));
    // The path PIN and a different body PIN disagree.
    let errors = rules()
        .validate(&doc("55502", "71234"), Some("55501"))
        .unwrap_err();
    assert_eq!(errors[0].field, "pin");
}

#[test]
fn validity_window() {
    let m = Mapping {
        pin: Pin::new("12345").unwrap(),
        target: Target::Meeting {
            meeting_id: "x".into(),
            server: None,
        },
        label: None,
        valid_from: Some(100),
        valid_until: Some(200),
        created_at: 0,
        updated_at: 0,
    };
    assert!(!m.is_valid_at(99));
    assert!(m.is_valid_at(100));
    assert!(m.is_valid_at(199));
    assert!(!m.is_valid_at(200));
    assert_eq!(format_time(1_893_456_000), "2030-01-01T00:00:00Z");
}
