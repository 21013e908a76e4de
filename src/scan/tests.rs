//! Unit tests for [`super::pii`] and [`super::validate`].

mod pii {
    use crate::scan::pii::{kinds, redact, scan, Finding, Kind};

    /// The (kind, matched text) pairs found in `s`.
    fn found(s: &str) -> Vec<(Kind, String)> {
        scan(s.as_bytes())
            .into_iter()
            .map(|f| (f.kind, s[f.start..f.end].to_string()))
            .collect()
    }

    fn only(s: &str, kind: Kind, text: &str) {
        assert_eq!(found(s), vec![(kind, text.to_string())], "input: {s:?}");
    }

    fn none(s: &str) {
        assert_eq!(found(s), vec![], "input: {s:?}");
    }

    #[test]
    fn kind_names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(Kind::parse("Credit-Card"), Some(Kind::CreditCard));
        assert_eq!(Kind::parse("ssn"), None);
        assert_eq!(Kind::CreditCard.as_str(), "credit_card");
    }

    #[test]
    fn email() {
        only(
            "mail alice.b+tag@example.co.uk now",
            Kind::Email,
            "alice.b+tag@example.co.uk",
        );
        only(
            "<mailto:bob_99@sub.example.org>.",
            Kind::Email,
            "bob_99@sub.example.org",
        );
        only("End: x@y.io.", Kind::Email, "x@y.io");
        only("..lead@dots.com", Kind::Email, "lead@dots.com");
        only(
            "a@xn--bcher-kva.xn--tckwe",
            Kind::Email,
            "a@xn--bcher-kva.xn--tckwe",
        );
    }

    #[test]
    fn email_negatives() {
        none("user@localhost");
        none("a..b@example.com");
        none("trailing.@example.com");
        none("@example.com");
        none("x@-bad.com");
        none("x@example.c0m");
        none("x@example.c");
        none("@@@@@@@@@@");
        none("git remote git@github.com:org/repo.git");
        none("icon@2x.png and logo@3x.PNG");
        none("npm i lodash@4.17.21 @types/node");
        only("write to a@b.com: thanks", Kind::Email, "a@b.com");
        none(&format!("{}@example.com", "a".repeat(65)));
    }

    #[test]
    fn phone() {
        only(
            "call +1 (555) 123-4567 today",
            Kind::Phone,
            "+1 (555) 123-4567",
        );
        only("tel:+442079460958", Kind::Phone, "+442079460958");
        only("+33 1 23 45 67 89", Kind::Phone, "+33 1 23 45 67 89");
        only("+49-30-1234-5678,", Kind::Phone, "+49-30-1234-5678");
        only("office (555) 123-4567.", Kind::Phone, "(555) 123-4567");
        only("(212)555-0100", Kind::Phone, "(212)555-0100");
        only("555-123-4567", Kind::Phone, "555-123-4567");
        only("1-800-555-0199", Kind::Phone, "1-800-555-0199");
        only("555.123.4567", Kind::Phone, "555.123.4567");
    }

    #[test]
    fn phone_negatives() {
        none("date 2026-11-24 and 2026-11-24T10:30:00+01:00");
        none("version 1.2.3 and 10.0.0.1 and v2.14.1");
        none("plain 5551234567 digits 123456789012345678901234567890");
        none("+1234567"); // too short
        none("+12345678901234567"); // too long
        none("1+23456789012"); // arithmetic, not a '+' prefix
        none("555-123-45678");
        none("555-123.4567"); // mixed separators
        none("10.555.123.4567");
        none("(123) 456-7890"); // area code cannot start with 1
        none("+1 (555 123 4567");
        // A following number is not swallowed once `-`/`.` separators are used.
        only("+1 555-123-4567 42", Kind::Phone, "+1 555-123-4567");
        only(
            "+1 (555) 123-4567 2026-11-24",
            Kind::Phone,
            "+1 (555) 123-4567",
        );
        only("+44 20 7946 0958. 42", Kind::Phone, "+44 20 7946 0958");
    }

    #[test]
    fn credit_card() {
        only(
            "visa 4111111111111111.",
            Kind::CreditCard,
            "4111111111111111",
        );
        only(
            "mc 5500 0000 0000 0004 exp",
            Kind::CreditCard,
            "5500 0000 0000 0004",
        );
        only(
            "amex 3782-822463-10005",
            Kind::CreditCard,
            "3782-822463-10005",
        );
        only("6011111111111117", Kind::CreditCard, "6011111111111117");
        only("2223000048400011", Kind::CreditCard, "2223000048400011");
        only("3530111333300000", Kind::CreditCard, "3530111333300000");
        only("30569309025904", Kind::CreditCard, "30569309025904");
        only("4222222222222", Kind::CreditCard, "4222222222222");
        only(
            "4111111111111111 2 items",
            Kind::CreditCard,
            "4111111111111111",
        );
        only(
            "1234 4111111111111111",
            Kind::CreditCard,
            "4111111111111111",
        );
    }

    #[test]
    fn credit_card_negatives() {
        none("4111111111111112"); // Luhn-invalid
        none("94111111111111111"); // inside a longer run
        none("41111111111111110000"); // too long
        none("x4111111111111111"); // glued to a word
        none("4111111111111111abc");
        none("0.4111111111111111");
        none("4111 1111-1111 1111"); // mixed separators
        none("4111  1111 1111 1111"); // double space
        none("1234567890123456"); // unknown IIN
        none("1 3 7 8 2 8 2 2 4 6 3 1 0 0 0 5");
    }

    #[test]
    fn ssn() {
        only("ssn 123-45-6789.", Kind::UsSsn, "123-45-6789");
        only("078-05-1120", Kind::UsSsn, "078-05-1120");
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            none(bad);
        }
        none("123-45-67890");
        none("1123-45-6789");
        none("2026-45-6789");
        none("123-45-6789-1");
    }

    #[test]
    fn iban() {
        only(
            "IBAN DE89 3704 0044 0532 0130 00 EUR",
            Kind::Iban,
            "DE89 3704 0044 0532 0130 00",
        );
        only(
            "GB82WEST12345698765432",
            Kind::Iban,
            "GB82WEST12345698765432",
        );
        only(
            "FR14 2004 1010 0505 0001 3M02 606",
            Kind::Iban,
            "FR14 2004 1010 0505 0001 3M02 606",
        );
        only("(NL91ABNA0417164300)", Kind::Iban, "NL91ABNA0417164300");
        only("NO9386011117947", Kind::Iban, "NO9386011117947");
    }

    #[test]
    fn iban_negatives() {
        none("DE89 3704 0044 0532 0130 01"); // bad checksum
        none("DE89370400440532013000X"); // longer than DE length
        none("DE8937040044053201300"); // shorter
        none("ZZ89370400440532013000"); // unknown country
        none("XDE89370400440532013000");
        none("DE89 370 40044 0532 0130 00"); // space not on a group boundary
    }

    #[test]
    fn aws() {
        only(
            "key=AKIAIOSFODNN7EXAMPLE;",
            Kind::AwsAccessKey,
            "AKIAIOSFODNN7EXAMPLE",
        );
        only(
            "ASIAY34FZKBOKMUTVV7A",
            Kind::AwsAccessKey,
            "ASIAY34FZKBOKMUTVV7A",
        );
        none("AKIAIOSFODNN7EXAMPLE1");
        none("XAKIAIOSFODNN7EXAMPLE");
        none("AKIAIOSFODNN7EXAMPL");
        none("AKIAiosfodnn7example");
    }

    const PEM: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn private_key() {
        let s = format!("before\n{PEM}\nafter");
        only(&s, Kind::PrivateKey, PEM);
        let open =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nuser@example.com\n";
        let s = format!("x {open}");
        only(&s, Kind::PrivateKey, open); // no END: to end of input
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nabc\n-----END PGP PRIVATE KEY BLOCK-----";
        only(pgp, Kind::PrivateKey, pgp);
        // END of another label does not close the block.
        let odd = "-----BEGIN EC PRIVATE KEY-----\na\n-----END RSA PRIVATE KEY-----\nb\n-----END EC PRIVATE KEY-----";
        only(odd, Kind::PrivateKey, odd);
        none("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----");
        none("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----");
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn jwt() {
        only(&format!("Authorization: Bearer {JWT}."), Kind::Jwt, JWT);
        only(&format!("\"{JWT}\""), Kind::Jwt, JWT);
        none("eyJhbGciOiJIUzI1NiJ9.e30."); // unsigned / short
        none("eyJhbGci.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4fw"); // header too short
        none(&format!("x{JWT}"));
        none("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 is only a header");
    }

    #[test]
    fn api_tokens() {
        let cases = [
            "ghp_1234567890abcdefghijABCDEFGHIJ123456",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
            "sk-proj-Abc123def456GHI789jkl012MNO345pqr678",
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
            "sk-1234567890abcdefghijklmnopqrstuvwxyzABCDEFGH",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "glpat-xxxxxxxxxxxx1234xxxx",
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_51H8abcdefghijklmnopqrstu",
            "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        ];
        for t in cases {
            only(&format!("token: {t}\n"), Kind::ApiToken, t);
            only(&format!("KEY=\"{t}\""), Kind::ApiToken, t);
        }
    }

    #[test]
    fn api_token_negatives() {
        none("ghp_short");
        none("xghp_1234567890abcdefghijABCDEFGHIJ123456");
        none("my_ghp_1234567890abcdefghijABCDEFGHIJ123456");
        none("sk-learn is a library");
        none("sk-this-is-just-a-long-hyphenated-phrase");
        none("AIzaSyA1234567890abcdefghijklmnopqrstuvX"); // 40 chars
        none("ghp_1234567890abcdefghijABCDEFGHIJ123456_x");
        none("sk_test_4eC39HqLyjWDarjtT1zdp7dc");
    }

    #[test]
    fn findings_in_context() {
        let noise = [
            "the",
            "2026-11-24",
            "v1.2.3",
            "42",
            "3.14",
            "100",
            "10:30",
            "e.g.",
            "Note:",
            "#7",
        ];
        let seps = [" ", ", ", ". ", ".\n\n", " (", ") ", "\t"];
        let items = [
            (Kind::Email, "alice@example.com"),
            (Kind::Phone, "+1 (555) 123-4567"),
            (Kind::Phone, "+44 20 7946 0958"),
            (Kind::Phone, "555-123-4567"),
            (Kind::CreditCard, "4111 1111 1111 1111"),
            (Kind::CreditCard, "5500000000000004"),
            (Kind::UsSsn, "123-45-6789"),
            (Kind::Iban, "DE89 3704 0044 0532 0130 00"),
            (Kind::AwsAccessKey, "AKIAIOSFODNN7EXAMPLE"),
            (Kind::ApiToken, "ghp_1234567890abcdefghijABCDEFGHIJ123456"),
            (Kind::Jwt, JWT),
        ];
        for w in noise {
            for (kind, item) in items {
                for a in seps {
                    for b in seps {
                        only(&format!("{w}{a}{item}{b}{w}"), kind, item);
                    }
                }
            }
        }
    }

    #[test]
    fn overlapping_candidates_longest_wins() {
        // A card-shaped local part inside an e-mail address.
        only(
            "4111111111111111@example.com",
            Kind::Email,
            "4111111111111111@example.com",
        );
        // A phone inside an e-mail address.
        only(
            "555-123-4567@example.com",
            Kind::Email,
            "555-123-4567@example.com",
        );
        // E.164 with a NANP number inside: the longer phone wins, once.
        only("+1 (555) 123-4567", Kind::Phone, "+1 (555) 123-4567");
        // Everything inside a key block is part of the block.
        let s = "-----BEGIN PRIVATE KEY-----\nalice@example.com 4111111111111111\n-----END PRIVATE KEY-----";
        only(s, Kind::PrivateKey, s);
        // An AWS key inside an API token body is not reported separately.
        let t = "glpat-AKIAIOSFODNN7EXAMPLE-abc123x";
        only(t, Kind::ApiToken, t);
    }

    #[test]
    fn several_findings_sorted() {
        let s = "a@b.com 123-45-6789 AKIAIOSFODNN7EXAMPLE 4111111111111111 +442079460958";
        let f = scan(s.as_bytes());
        let ks: Vec<Kind> = f.iter().map(|f| f.kind).collect();
        assert_eq!(
            ks,
            [
                Kind::Email,
                Kind::UsSsn,
                Kind::AwsAccessKey,
                Kind::CreditCard,
                Kind::Phone
            ]
        );
        assert!(f.windows(2).all(|w| w[0].end <= w[1].start));
        assert_eq!(
            kinds(&f),
            [
                Kind::Email,
                Kind::Phone,
                Kind::CreditCard,
                Kind::UsSsn,
                Kind::AwsAccessKey
            ]
        );
        assert_eq!(kinds(&[]), []);
    }

    #[test]
    fn redaction_exact() {
        let s = b"mail bob@example.com, card 4111 1111 1111 1111; ssn 123-45-6789";
        let out = redact(s, &scan(s));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "mail [REDACTED:email], card [REDACTED:credit_card]; ssn [REDACTED:us_ssn]"
        );
        assert_eq!(redact(b"nothing here", &[]), b"nothing here");
        let key = format!("k={PEM}\n");
        assert_eq!(
            redact(key.as_bytes(), &scan(key.as_bytes())),
            b"k=[REDACTED:private_key]\n"
        );
    }

    #[test]
    fn redaction_ignores_bad_findings() {
        let bad = [
            Finding {
                kind: Kind::Jwt,
                start: 2,
                end: 100,
            },
            Finding {
                kind: Kind::Email,
                start: 4,
                end: 2,
            },
            Finding {
                kind: Kind::Phone,
                start: 0,
                end: 3,
            },
            Finding {
                kind: Kind::Iban,
                start: 1,
                end: 5,
            },
        ];
        assert_eq!(redact(b"abcdefg", &bad), b"[REDACTED:phone]defg");
    }

    #[test]
    fn non_utf8_input() {
        let mut s = b"\xff\xfe bob@example.com \xc3\x28 4111111111111111\x80".to_vec();
        let f = scan(&s);
        assert_eq!(kinds(&f), [Kind::Email, Kind::CreditCard]);
        s = redact(&s, &f);
        assert_eq!(
            s,
            b"\xff\xfe [REDACTED:email] \xc3\x28 [REDACTED:credit_card]\x80"
        );
    }

    #[test]
    fn edges_never_panic() {
        let snippets: [&[u8]; 14] = [
            b"",
            b"@",
            b"+",
            b"(",
            b"-----BEGIN ",
            b"-----BEGIN RSA PRIVATE KEY-----",
            b"eyJ",
            b"AKIA",
            b"AIza",
            b"DE89",
            b"ghp_",
            b"4111",
            b"123-45-",
            b"a@b.",
        ];
        for s in snippets {
            for cut in 0..=s.len() {
                let _ = scan(&s[..cut]);
                let _ = scan(&s[cut..]);
            }
        }
    }

    /// Deterministic xorshift bytes.
    fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            v.extend_from_slice(&seed.to_le_bytes());
        }
        v.truncate(len);
        v
    }

    #[test]
    fn ten_mib_random_bytes_finishes() {
        let data = random_bytes(10 << 20, 0x9E37_79B9_7F4A_7C15);
        let f = scan(&data);
        assert!(f.windows(2).all(|w| w[0].end <= w[1].start));
        assert!(f.iter().all(|f| f.start < f.end && f.end <= data.len()));
        let _ = redact(&data, &f);
    }

    #[test]
    fn random_fragment_soup_keeps_invariants() {
        let frags: [&[u8]; 24] = [
            b"4111",
            b"1",
            b" ",
            b"-",
            b".",
            b"@",
            b"a",
            b"x.io",
            b"+1",
            b"(",
            b")",
            b"eyJ",
            b"AKIA",
            b"DE89",
            b"-----BEGIN PRIVATE KEY-----",
            b"-----END PRIVATE KEY-----",
            b"ghp_",
            b"sk-",
            b"\xff",
            b"\n",
            b"_",
            b"AIza",
            b"Q7",
            b"0000",
        ];
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            let mut data = Vec::new();
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut r = rng;
            for _ in 0..(r % 40) {
                r = r.rotate_left(5).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                data.extend_from_slice(frags[(r >> 59) as usize % frags.len()]);
            }
            let f = scan(&data);
            assert!(f.windows(2).all(|w| w[0].end <= w[1].start), "{data:?}");
            assert!(
                f.iter().all(|f| f.start < f.end && f.end <= data.len()),
                "{data:?}"
            );
            let red = redact(&data, &f);
            assert!(red.len() + f.iter().map(|f| f.end - f.start).sum::<usize>() >= data.len());
        }
    }

    /// Throughput figure, not a check:
    /// `cargo test --release -- --ignored --nocapture scan_throughput`.
    #[test]
    #[ignore]
    fn scan_throughput() {
        const LEN: usize = 64 << 20;
        let words = [
            "the",
            "of",
            "and",
            "memory",
            "agent",
            "file",
            "version",
            "2026-11-24",
            "v1.2.3",
            "42",
            "session",
            "user",
            "search",
            "e.g.",
            "Result:",
            "alice@example.com",
            "(see",
            "notes)",
        ];
        let random = random_bytes(LEN, 7);
        let mut text = Vec::with_capacity(LEN + 32);
        for (k, b) in random_bytes(LEN / 4, 11).iter().enumerate() {
            if text.len() >= LEN {
                break;
            }
            let w = words[usize::from(*b) % words.len()];
            // Keep the sprinkled address rare: about one word in 10^4.
            let w = if w.contains('@') && k % 1000 != 0 {
                "the"
            } else {
                w
            };
            text.extend_from_slice(w.as_bytes());
            text.extend_from_slice(if b % 13 == 0 { b".\n" } else { b" " });
        }
        text.truncate(LEN);
        for (name, data) in [("random bytes", &random), ("english-like text", &text)] {
            let t = std::time::Instant::now();
            let n = scan(data).len();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "scan {name}: 64 MiB in {:.0} ms = {:.0} MiB/s ({n} findings)",
                secs * 1e3,
                64.0 / secs
            );
        }
    }

    #[test]
    fn pathological_inputs_finish() {
        // Each is 2 MiB and would be quadratic with naive rescans.
        let mib2 = 2 << 20;
        let patterns: [&[u8]; 10] = [
            b"1",
            b"1 ",
            b"1-",
            b"@",
            b"a@",
            b"a.",
            b"-",
            b"eyJ-",
            b"sk-a",
            b"-----BEGIN PRIVATE KEY-----\n",
        ];
        for p in patterns {
            let data: Vec<u8> = p.iter().copied().cycle().take(mib2).collect();
            let f = scan(&data);
            assert!(f.windows(2).all(|w| w[0].end <= w[1].start));
        }
        let mut deep = vec![b'a'; mib2];
        deep.push(b'@');
        deep.extend(std::iter::repeat_n(b'b', mib2));
        assert!(scan(&deep).is_empty());
    }
}

mod validate {
    use crate::scan::validate::{validate, Format};

    fn err(f: Format, s: &[u8]) -> String {
        validate(f, s).expect_err("expected invalid")
    }

    #[test]
    fn format_names() {
        for f in [Format::Json, Format::Jsonl, Format::Toml, Format::Yaml] {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert_eq!(Format::parse("YML"), Some(Format::Yaml));
        assert_eq!(Format::parse(".ndjson"), Some(Format::Jsonl));
        assert_eq!(Format::parse("xml"), None);
    }

    #[test]
    fn json() {
        assert_eq!(
            validate(Format::Json, br#"{"a": [1, 2.5, null, "x"]}"#),
            Ok(())
        );
        assert_eq!(validate(Format::Json, b"  42\n"), Ok(()));
        assert_eq!(validate(Format::Json, b"\xEF\xBB\xBF{}"), Ok(()));
        assert_eq!(
            err(Format::Json, b"{\"a\": 1\n\n   \"b\": 2}"),
            "invalid JSON at line 3 column 4: expected `,` or `}`"
        );
        assert_eq!(
            err(Format::Json, b"{\"a\": 1,\n \"b\": [1,,2]}"),
            "invalid JSON at line 2 column 10: expected value"
        );
        assert_eq!(
            err(Format::Json, b"{} x"),
            "invalid JSON at line 1 column 4: trailing characters"
        );
        // Columns count characters, not bytes.
        assert_eq!(
            err(Format::Json, "{\"éé\": tru}".as_bytes()),
            "invalid JSON at line 1 column 11: expected ident"
        );
    }

    #[test]
    fn json_empty_is_invalid() {
        assert_eq!(err(Format::Json, b""), "invalid JSON: empty document");
        assert_eq!(err(Format::Json, b" \n\t"), "invalid JSON: empty document");
    }

    #[test]
    fn json_deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(err(Format::Json, deep.as_bytes()).contains("recursion limit exceeded"));
    }

    #[test]
    fn jsonl() {
        assert_eq!(validate(Format::Jsonl, b""), Ok(()));
        assert_eq!(
            validate(Format::Jsonl, b"{\"a\":1}\r\n\n  \n[2]\n3"),
            Ok(())
        );
        assert_eq!(
            err(Format::Jsonl, b"{\"a\":1}\n\n{\"b\":}\n"),
            "invalid JSONL at line 3 column 6: expected value"
        );
        assert_eq!(
            err(Format::Jsonl, b"{\"a\":\n1}\n"),
            "invalid JSONL at line 1 column 5: EOF while parsing a value"
        );
        assert_eq!(
            err(Format::Jsonl, b"1 2\n"),
            "invalid JSONL at line 1 column 3: trailing characters"
        );
    }

    #[test]
    fn toml() {
        assert_eq!(validate(Format::Toml, b""), Ok(()));
        assert_eq!(validate(Format::Toml, b"# only a comment\n"), Ok(()));
        assert_eq!(
            validate(Format::Toml, b"a = 1\n[t]\nb = [1, 2]\nc = { d = \"e\" }\n"),
            Ok(())
        );
        assert_eq!(
            err(Format::Toml, b"a = 1\na = 2\n"),
            "invalid TOML at line 2 column 1: duplicate key `a`"
        );
        assert_eq!(
            err(Format::Toml, b"a = \"unterminated\n"),
            "invalid TOML at line 1 column 18: invalid basic string, expected `\"`"
        );
        let e = err(Format::Toml, b"ok = true\nb = \nc=2");
        assert!(e.starts_with("invalid TOML at line 2 column 5: "), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn yaml() {
        assert_eq!(validate(Format::Yaml, b""), Ok(()));
        assert_eq!(validate(Format::Yaml, b"# comment only\n"), Ok(()));
        assert_eq!(
            validate(Format::Yaml, b"a: 1\nb:\n  - x\n  - {c: d}\n---\n- 2\n"),
            Ok(())
        );
        assert_eq!(
            validate(Format::Yaml, b"base: &b {x: 1}\nuse: *b\n"),
            Ok(())
        );
        assert_eq!(
            err(Format::Yaml, b"a: 1\na: 2\n"),
            "invalid YAML at line 2 column 1: duplicate key \"a\" in mapping"
        );
        assert_eq!(
            err(Format::Yaml, b"a:\n  - 1\n - 2\n"),
            "invalid YAML at line 3 column 2: while parsing a block mapping, did not find expected key"
        );
        assert_eq!(
            err(Format::Yaml, b"a: *nope\n"),
            "invalid YAML at line 1 column 4: while parsing node, found unknown anchor"
        );
        assert_eq!(
            err(Format::Yaml, b"a: b: c\n"),
            "invalid YAML at line 1 column 5: mapping values are not allowed in this context"
        );
    }

    #[test]
    fn yaml_alias_bomb_is_cheap() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..40 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert_eq!(validate(Format::Yaml, s.as_bytes()), Ok(()));
    }

    #[test]
    fn non_utf8_is_an_error_for_every_format() {
        for f in [Format::Json, Format::Jsonl, Format::Toml, Format::Yaml] {
            let e = err(f, b"{\"a\":\n \"\xff\"}");
            assert!(
                e.ends_with("at line 2 column 3: not UTF-8 (byte 0xFF)"),
                "{e}"
            );
        }
    }
}
