use super::*;

const KEY: [u8; 32] = [7; 32];
const PASSWORD: &str = "correct horse battery staple";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn auth() -> Authenticator {
    Authenticator::new("pbx.example.test", KEY).unwrap()
}

/// What a phone would send for `challenge`, as an `Authorization` value.
fn answer(challenge: &Challenge, password: &str, nc: u32, qop: bool) -> String {
    let mut r = DigestResponse {
        username: "100".into(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: "sips:pbx.example.test".into(),
        response: String::new(),
        algorithm: challenge.algorithm,
        qop_auth: qop.then(|| (nc, "0a4f113b".to_owned())),
        opaque: Some(challenge.opaque.clone()),
    };
    let ha1 = r.algorithm.hash_joined(&["100", &r.realm, password]);
    r.response = expected_response(&ha1, &r, "REGISTER").to_string();
    let mut v = format!(
        "Digest username=\"100\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}, opaque=\"{}\"",
        r.realm,
        r.nonce,
        r.uri,
        r.response,
        r.algorithm.as_str(),
        challenge.opaque
    );
    if qop {
        v.push_str(&format!(", qop=auth, nc={nc:08x}, cnonce=\"0a4f113b\""));
    }
    v
}

fn verify(a: &mut Authenticator, header: &str, credential: &Credential, now: u64) -> Result<(), AuthError> {
    let parsed = DigestResponse::parse(header)?;
    a.verify(&parsed, &Method::Register, credential, at(now))
}

#[test]
fn rfc_vectors() {
    // RFC 7616 §3.9.1 (the same request hashed with MD5 and SHA-256).
    let mut r = DigestResponse {
        username: "Mufasa".into(),
        realm: "http-auth@example.org".into(),
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
        uri: "/dir/index.html".into(),
        response: String::new(),
        algorithm: Algorithm::Md5,
        qop_auth: Some((1, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into())),
        opaque: None,
    };
    let ha1 = Algorithm::Md5.hash_joined(&["Mufasa", "http-auth@example.org", "Circle of Life"]);
    assert_eq!(expected_response(&ha1, &r, "GET"), "8ca523f5e9506fed4657c9700eebdbec");
    r.algorithm = Algorithm::Sha256;
    let ha1 = Algorithm::Sha256.hash_joined(&["Mufasa", "http-auth@example.org", "Circle of Life"]);
    assert_eq!(
        expected_response(&ha1, &r, "GET"),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    // RFC 2617 §3.5.
    let r = DigestResponse {
        username: "Mufasa".into(),
        realm: "testrealm@host.com".into(),
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
        uri: "/dir/index.html".into(),
        response: String::new(),
        algorithm: Algorithm::Md5,
        qop_auth: Some((1, "0a4f113b".into())),
        opaque: None,
    };
    let ha1 = Algorithm::Md5.hash_joined(&["Mufasa", "testrealm@host.com", "Circle Of Life"]);
    assert_eq!(expected_response(&ha1, &r, "GET"), "6629fae49393a05397450978507c4ef1");
}

#[test]
fn challenge_header() {
    let a = auth();
    let [sha, md5] = a.challenges(false, at(1_000));
    let text = sha.to_string();
    assert!(
        text.starts_with("Digest realm=\"pbx.example.test\", nonce=\""),
        "{text}"
    );
    assert!(text.ends_with("algorithm=SHA-256, qop=\"auth\""), "{text}");
    assert_eq!(md5.algorithm, Algorithm::Md5);
    assert_ne!(sha.nonce, md5.nonce);
    assert!(
        a.challenge(Algorithm::Md5, true, at(1))
            .to_string()
            .ends_with(", stale=true")
    );
    assert_eq!(Authenticator::new("a\"b", KEY).unwrap_err(), AuthError::InvalidRealm);
}

#[test]
fn accepts_both_algorithms_and_legacy_form() {
    let mut a = auth();
    let pw = Credential::Password(PASSWORD.into());
    for challenge in a.challenges(false, at(1_000)) {
        assert_eq!(
            verify(&mut a, &answer(&challenge, PASSWORD, 1, true), &pw, 1_010),
            Ok(())
        );
        assert_eq!(
            verify(&mut a, &answer(&challenge, PASSWORD, 2, true), &pw, 1_020),
            Ok(())
        );
    }
    let legacy = a.challenge(Algorithm::Md5, false, at(1_000));
    assert_eq!(verify(&mut a, &answer(&legacy, PASSWORD, 0, false), &pw, 1_001), Ok(()));
    // Without nc the nonce is single-use.
    assert_eq!(
        verify(&mut a, &answer(&legacy, PASSWORD, 0, false), &pw, 1_002),
        Err(AuthError::Replay)
    );
}

#[test]
fn stored_ha1() {
    let mut a = auth();
    let c = a.challenge(Algorithm::Sha256, false, at(1_000));
    let ha1 = Algorithm::Sha256
        .hash_joined(&["100", "pbx.example.test", PASSWORD])
        .to_string();
    let cred = Credential::Ha1 {
        algorithm: Algorithm::Sha256,
        hex: ha1.clone(),
    };
    assert_eq!(verify(&mut a, &answer(&c, PASSWORD, 1, true), &cred, 1_001), Ok(()));
    let md5 = Credential::Ha1 {
        algorithm: Algorithm::Md5,
        hex: ha1,
    };
    assert_eq!(
        verify(&mut a, &answer(&c, PASSWORD, 2, true), &md5, 1_001),
        Err(AuthError::AlgorithmMismatch)
    );
}

#[test]
fn refusals() {
    let mut a = auth();
    let pw = Credential::Password(PASSWORD.into());
    let c = a.challenge(Algorithm::Md5, false, at(1_000));
    assert_eq!(
        verify(&mut a, &answer(&c, "wrong", 1, true), &pw, 1_001),
        Err(AuthError::WrongResponse)
    );
    // A wrong response must not have advanced nc.
    assert_eq!(verify(&mut a, &answer(&c, PASSWORD, 1, true), &pw, 1_001), Ok(()));
    assert_eq!(
        verify(&mut a, &answer(&c, PASSWORD, 1, true), &pw, 1_002),
        Err(AuthError::Replay)
    );
    // Expired: stale if the password was right, plain failure otherwise.
    assert_eq!(
        verify(&mut a, &answer(&c, PASSWORD, 5, true), &pw, 1_301),
        Err(AuthError::StaleNonce)
    );
    assert_eq!(
        verify(&mut a, &answer(&c, "wrong", 5, true), &pw, 1_301),
        Err(AuthError::WrongResponse)
    );
    // A nonce from another server (other key), or altered.
    let other = Authenticator::new("pbx.example.test", [8; 32]).unwrap();
    let foreign = other.challenge(Algorithm::Md5, false, at(1_000));
    let header = answer(&foreign, PASSWORD, 1, true).replace(&foreign.opaque, &c.opaque);
    assert_eq!(verify(&mut a, &header, &pw, 1_001), Err(AuthError::InvalidNonce));
    let mut tampered = c.clone();
    tampered
        .nonce
        .replace_range(0..1, if c.nonce.starts_with('A') { "B" } else { "A" });
    assert_eq!(
        verify(&mut a, &answer(&tampered, PASSWORD, 1, true), &pw, 1_001),
        Err(AuthError::InvalidNonce)
    );
    // Realm and opaque.
    let header = answer(&c, PASSWORD, 9, true).replace("realm=\"pbx.example.test\"", "realm=\"evil\"");
    assert_eq!(verify(&mut a, &header, &pw, 1_001), Err(AuthError::WrongRealm));
    let header = answer(&c, PASSWORD, 9, true).replace(&c.opaque, "00");
    assert_eq!(verify(&mut a, &header, &pw, 1_001), Err(AuthError::OpaqueMismatch));
}

#[test]
fn replay_table_is_bounded_without_opening_replays() {
    let mut a = auth().with_max_tracked(2);
    let pw = Credential::Password(PASSWORD.into());
    let first = a.challenge(Algorithm::Md5, false, at(1_000));
    assert_eq!(verify(&mut a, &answer(&first, PASSWORD, 1, true), &pw, 1_000), Ok(()));
    for _ in 0..3 {
        let c = a.challenge(Algorithm::Md5, false, at(1_000));
        assert_eq!(verify(&mut a, &answer(&c, PASSWORD, 1, true), &pw, 1_000), Ok(()));
    }
    assert!(a.used.len() <= 2);
    // The first nonce was evicted: replaying it is answered with stale.
    assert_eq!(
        verify(&mut a, &answer(&first, PASSWORD, 1, true), &pw, 1_001),
        Err(AuthError::StaleNonce)
    );
}

#[test]
fn parse_errors() {
    for (header, err) in [
        ("Basic dXNlcjpwdw==", AuthError::Malformed("scheme")),
        ("Digest", AuthError::Malformed("scheme")),
        ("Digest username=\"a\"", AuthError::Malformed("realm")),
        (
            "Digest username=a, username=b",
            AuthError::Malformed("duplicate parameter"),
        ),
        (
            "Digest username=a, realm=r, nonce=n, uri=u, response=r, algorithm=MD5-sess",
            AuthError::UnsupportedAlgorithm,
        ),
        (
            "Digest username=a, realm=r, nonce=n, uri=u, response=r, qop=auth-int",
            AuthError::UnsupportedQop,
        ),
        (
            "Digest username=a, realm=r, nonce=n, uri=u, response=r, qop=auth, cnonce=c",
            AuthError::Malformed("nc"),
        ),
        (
            "Digest username=a, realm=r, nonce=n, uri=u, response=r, qop=auth, nc=zz, cnonce=c",
            AuthError::Malformed("nc"),
        ),
    ] {
        assert_eq!(DigestResponse::parse(header), Err(err), "{header}");
    }
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let cred = Credential::Password(PASSWORD.into());
    assert!(!format!("{cred:?}").contains("horse"));
    let ha1 = Credential::Ha1 {
        algorithm: Algorithm::Md5,
        hex: "d3b07384d113edec49eaa6238ad5ff00".into(),
    };
    assert!(!format!("{ha1:?}").contains("d3b0"));
    let a = auth();
    assert!(!format!("{a:?}").contains("7, 7"));
    let mut a = auth();
    let c = a.challenge(Algorithm::Md5, false, at(1));
    let err = verify(&mut a, &answer(&c, "wrong", 1, true), &cred, 2).unwrap_err();
    assert!(!format!("{err:?} {err}").contains("horse"));
}

#[test]
fn a_client_answer_to_our_own_challenge_verifies() {
    // The client side (the PBX toward a trunk) checked against the server
    // side, for both algorithms, with and without qop.
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let mut server = auth();
        let challenge = server.challenge(alg, false, at(1000));
        let read = ServerChallenge::parse(&challenge.to_string()).unwrap();
        assert_eq!((read.algorithm, read.qop_auth), (alg, true));
        assert_eq!(read.opaque.as_deref(), Some(challenge.opaque.as_str()));
        let value = read.answer("REGISTER", "sip:pbx.example.test", "100", PASSWORD, "c0ffee", 1);
        let response = DigestResponse::parse(&value).unwrap();
        let cred = Credential::Password(PASSWORD.into());
        assert_eq!(server.verify(&response, &Method::Register, &cred, at(1001)), Ok(()));
        let wrong = read.answer("REGISTER", "sip:pbx.example.test", "100", "nope", "c0ffee", 2);
        assert_eq!(
            server.verify(
                &DigestResponse::parse(&wrong).unwrap(),
                &Method::Register,
                &cred,
                at(1001)
            ),
            Err(AuthError::WrongResponse)
        );
    }
}

#[test]
fn server_challenges_from_other_stacks_are_read() {
    // RFC 2617 §3.5's example, and an auth-int-only offer.
    let c = ServerChallenge::parse(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    assert!(c.qop_auth);
    assert_eq!(c.algorithm, Algorithm::Md5);
    // RFC 2617 §3.5: Mufasa / "Circle Of Life", GET /dir/index.html.
    let v = c.answer("GET", "/dir/index.html", "Mufasa", "Circle Of Life", "0a4f113b", 1);
    assert!(v.contains("response=\"6629fae49393a05397450978507c4ef1\""), "{v}");
    assert_eq!(
        ServerChallenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
        Err(AuthError::UnsupportedQop)
    );
    assert!(ServerChallenge::parse("Basic realm=\"r\"").is_err());
    // No qop: the RFC 2069 form.
    let legacy = ServerChallenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
    assert!(!legacy.answer("INVITE", "sip:x@y", "u", "p", "c", 1).contains("qop="));
}
