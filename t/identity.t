# Device identity: where the certificate comes from (Mdm-Signature, the TLS
# client certificate, a header set by a TLS terminator) and how it is checked
# against mdm_identity_ca. Every rejection is a 400 (never 401, which makes a
# device unenroll) and exactly one [error] line naming the reason.
#
# The TLS tests are real TLS: a second server in http{} listens with ssl and
# `ssl_verify_client optional_no_ca`; locations of the plain server proxy to it
# with proxy_ssl_certificate set to a device certificate (or none).

use Test::Nginx::Socket 'no_plan';
use t::MDM;

use MIME::Base64 qw(encode_base64 decode_base64);

no_shuffle();

# Client certificates the proxies present; made now, so nginx.conf can name
# their files.
{
    my %tls = (DEV => device_cert('tls-dev'),
               ROGUE => device_cert('tls-rogue', issuer => 'rogue'),
               FWD => device_cert('tls-fwd'),
               FIRST => device_cert('tls-first'));
    for my $k (keys %tls) {
        $ENV{"TEST_NGINX_${k}_CERT"} = $tls{$k}{cert};
        $ENV{"TEST_NGINX_${k}_KEY"} = $tls{$k}{key};
        $ENV{"TEST_NGINX_${k}_CHAIN"} = $tls{$k}{chain};
    }
}

# The body the harness sends for a `--- request eval` string.
sub body_of { return t::MDM::request_body($_[0], '', 1) }

# openssl cms over $body with extra arguments; -> base64 of the DER output.
my $Scratch = 0;
sub cms_b64 {
    my ($body, @args) = @_;
    my $dir = pki_dir() . '/sig';
    my ($in, $out) = ("$dir/id-body-" . ++$Scratch, "$dir/id-out-$Scratch");
    open my $fh, '>:raw', $in or die "$in: $!";
    print {$fh} $body;
    close $fh;
    my ($st, undef, $err) = t::MDM::run_cmd('openssl', 'cms', @args,
        '-binary', '-outform', 'DER', '-in', $in, '-out', $out);
    die "openssl cms @args: $err" if $st;
    open $fh, '<:raw', $out or die "$out: $!";
    local $/;
    my $der = <$fh>;
    unlink $in, $out;
    return encode_base64($der, '');
}

sub signer_args {
    my @args;
    for my $c (map { device_cert($_) } @_) {
        push @args, '-signer', $c->{cert}, '-inkey', $c->{key};
    }
    return @args;
}

# The signature's own bytes are the last ones of a DER SignedData without
# unsigned attributes: flip the last bit of the RSA signature value.
sub tampered_signature {
    my ($body, $who) = @_;
    my $der = decode_base64(mdm_signature($body, $who));
    substr($der, -1, 1) = chr(ord(substr($der, -1, 1)) ^ 0x01);
    return encode_base64($der, '');
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(body_of cms_b64 signer_args tampered_signature
               encode_base64 decode_base64);
}

mdm_defaults(
    http_config => q{
        mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;

        # The device-facing TLS endpoint: asks for a client certificate,
        # leaves verification to the module.
        server {
            listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
            server_name tls;

            ssl_certificate $TEST_NGINX_PKI/server.pem;
            ssl_certificate_key $TEST_NGINX_PKI/server.key;
            ssl_verify_client optional_no_ca;

            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;

            location = /mdm/checkin {
                mdm_checkin;
                mdm_identity tls;
                add_header X-Id $mdm_enrollment_id always;
            }

            location = /root-ca/checkin {
                mdm_checkin;
                mdm_identity tls;
                mdm_identity_ca $TEST_NGINX_PKI/ca.pem;
            }

            location = /sig-tls/checkin {
                mdm_checkin;
                mdm_identity signature tls;
            }

            location = /tls-sig/checkin {
                mdm_checkin;
                mdm_identity tls signature;
            }

            # A TLS terminator handing the certificate on in a header.
            location = /fwd {
                proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
                proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/hdr/checkin;
            }
        }
    },
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;

        location = /mdm/checkin {
            mdm_checkin;
            add_header X-Id $mdm_enrollment_id always;
        }

        location = /root-ca/checkin {
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/ca.pem;
        }

        location = /skew0/checkin {
            mdm_checkin;
            mdm_signature_skew 0;
        }

        location = /skew120/checkin {
            mdm_checkin;
            mdm_signature_skew 120;
        }

        location = /hdr/checkin {
            mdm_checkin;
            mdm_identity header X-Client-Cert from=127.0.0.1;
        }

        location = /hdr-sig/checkin {
            mdm_checkin;
            mdm_identity header X-Client-Cert from=127.0.0.1 signature;
        }

        location = /sig-hdr/checkin {
            mdm_checkin;
            mdm_identity signature header X-Client-Cert from=127.0.0.1;
        }

        # The device side of the TLS tests. No session reuse: every
        # request must do a full handshake with its own certificate.
        location = /tls/dev {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/mdm/checkin;
            proxy_ssl_certificate $TEST_NGINX_DEV_CERT;
            proxy_ssl_certificate_key $TEST_NGINX_DEV_KEY;
            proxy_ssl_session_reuse off;
        }

        location = /tls/rogue {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/mdm/checkin;
            proxy_ssl_certificate $TEST_NGINX_ROGUE_CERT;
            proxy_ssl_certificate_key $TEST_NGINX_ROGUE_KEY;
            proxy_ssl_session_reuse off;
        }

        location = /tls/none {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/mdm/checkin;
            proxy_ssl_session_reuse off;
        }

        location = /tls/chain-root-ca {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/root-ca/checkin;
            proxy_ssl_certificate $TEST_NGINX_DEV_CHAIN;
            proxy_ssl_certificate_key $TEST_NGINX_DEV_KEY;
            proxy_ssl_session_reuse off;
        }

        location = /tls/leaf-root-ca {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/root-ca/checkin;
            proxy_ssl_certificate $TEST_NGINX_DEV_CERT;
            proxy_ssl_certificate_key $TEST_NGINX_DEV_KEY;
            proxy_ssl_session_reuse off;
        }

        location = /tls/sig-tls {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/sig-tls/checkin;
            proxy_ssl_certificate $TEST_NGINX_DEV_CERT;
            proxy_ssl_certificate_key $TEST_NGINX_DEV_KEY;
            proxy_ssl_session_reuse off;
        }

        location = /tls/tls-sig {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/tls-sig/checkin;
            proxy_ssl_certificate $TEST_NGINX_FIRST_CERT;
            proxy_ssl_certificate_key $TEST_NGINX_FIRST_KEY;
            proxy_ssl_session_reuse off;
        }

        location = /tls/fwd {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/fwd;
            proxy_ssl_certificate $TEST_NGINX_FWD_CERT;
            proxy_ssl_certificate_key $TEST_NGINX_FWD_KEY;
            proxy_ssl_session_reuse off;
        }

        location = /tls/fwd-none {
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/fwd;
            proxy_ssl_session_reuse off;
        }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

our $AUTH = "nanomdm/mdm/testdata/Authenticate.2.plist";

run_tests();

__DATA__

=== TEST 1: Mdm-Signature: a valid signature identifies the device; its certificate is bound
--- request eval
checkin_request($::AUTH, UDID => "ID-SIG-1")
--- signed_by: sig1
--- error_code: 200
--- response_headers
X-Id: ID-SIG-1
--- redis_check eval
[
  [ "HGET mdm:enr:{ID-SIG-1} " . cert_sha256("sig1"), qr/^\d{10}$/ ],
  [ "GET mdm:certidx:" . cert_sha256("sig1"), "ID-SIG-1" ],
]
--- no_error_log
[error]



=== TEST 2: Mdm-Signature in indefinite-length BER (as Apple devices send) is accepted
--- request eval
checkin_request($::AUTH, UDID => "ID-SIG-BER")
--- signed_by: sig-ber
--- signature_opts: ber
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{ID-SIG-BER} " . cert_sha256("sig-ber"), qr/^\d{10}$/ ] ]
--- no_error_log
[error]



=== TEST 3: Mdm-Signature without signed attributes (no signingTime) is accepted
--- request eval
checkin_request($::AUTH, UDID => "ID-SIG-NOATTR")
--- signed_by: sig-noattr
--- signature_opts: noattr
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{ID-SIG-NOATTR} " . cert_sha256("sig-noattr"), qr/^\d{10}$/ ] ]
--- no_error_log
[error]



=== TEST 4: BER and no signed attributes together
--- request eval
checkin_request($::AUTH, UDID => "ID-SIG-BER-NOATTR")
--- signed_by: sig-ber-noattr
--- signature_opts: ber noattr
--- error_code: 200
--- no_error_log
[error]



=== TEST 5: the signature may carry the intermediate: it completes a chain to a root-only mdm_identity_ca
--- request eval
checkin_request("/root-ca/checkin $::AUTH", UDID => "ID-SIG-CHAIN")
--- signed_by: sig-chain
--- signature_opts: chain
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{ID-SIG-CHAIN} " . cert_sha256("sig-chain"), qr/^\d{10}$/ ] ]
--- no_error_log
[error]



=== TEST 6: without the intermediate, a root-only mdm_identity_ca cannot verify the device certificate
--- request eval
checkin_request("/root-ca/checkin $::AUTH", UDID => "ID-SIG-NOCHAIN")
--- signed_by: sig-nochain
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate is not issued by mdm_identity_ca
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
EXISTS mdm:enr:{ID-SIG-NOCHAIN} => 0



=== TEST 7: a device certificate issued directly by a root of mdm_identity_ca is accepted
--- request eval
checkin_request($::AUTH, UDID => "ID-SIG-ROOT")
--- signed_by: sig-root issuer=root
--- error_code: 200
--- no_error_log
[error]



=== TEST 8: no Mdm-Signature header: 400, no certificate
--- request eval
checkin_request($::AUTH, UDID => "ID-NOSIG")
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: no device certificate: no Mdm-Signature header, TLS client certificate or certificate header
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
EXISTS mdm:enr:{ID-NOSIG} => 0



=== TEST 9: Mdm-Signature that is not base64
--- request eval
checkin_request($::AUTH, UDID => "ID-BAD-B64")
--- more_headers
Mdm-Signature: this is *not* base64!
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature is not base64
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 10: Mdm-Signature that is base64 of something other than CMS
--- request eval
checkin_request($::AUTH, UDID => "ID-NOT-CMS")
--- more_headers eval
"Mdm-Signature: " . encode_base64("hello, I am a device" x 4, '')
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature is not a CMS structure
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 11: Mdm-Signature that is CMS, but Data rather than SignedData
--- request eval
checkin_request($::AUTH, UDID => "ID-CMS-DATA")
--- more_headers eval
"Mdm-Signature: " . cms_b64(body_of(checkin_request($::AUTH, UDID => "ID-CMS-DATA")), '-data_create')
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature is not CMS SignedData
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 12: Mdm-Signature that embeds the content (not detached), even over the right body
--- request eval
checkin_request($::AUTH, UDID => "ID-ATTACHED")
--- more_headers eval
"Mdm-Signature: " . cms_b64(body_of(checkin_request($::AUTH, UDID => "ID-ATTACHED")),
    '-sign', '-nodetach', '-md', 'sha256', '-nosmimecap', signer_args("attached"))
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature is not a detached signature
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
EXISTS mdm:enr:{ID-ATTACHED} => 0



=== TEST 13: Mdm-Signature with two signers
--- request eval
checkin_request($::AUTH, UDID => "ID-TWO-SIGNERS")
--- more_headers eval
"Mdm-Signature: " . cms_b64(body_of(checkin_request($::AUTH, UDID => "ID-TWO-SIGNERS")),
    '-sign', '-md', 'sha256', '-nosmimecap', signer_args("two-a", "two-b"))
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature must have exactly one signer
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 14: tampered body: the signature is valid, but for another body (another UDID)
--- request eval
checkin_request($::AUTH, UDID => "ID-TAMPERED-BODY")
--- more_headers eval
"Mdm-Signature: " . mdm_signature(body_of(checkin_request($::AUTH, UDID => "ID-SIG-1")), "sig1")
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature does not match the body
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
EXISTS mdm:enr:{ID-TAMPERED-BODY} => 0



=== TEST 15: tampered signature: one bit of the RSA signature flipped
--- request eval
checkin_request($::AUTH, UDID => "ID-TAMPERED-SIG")
--- more_headers eval
"Mdm-Signature: " . tampered_signature(body_of(checkin_request($::AUTH, UDID => "ID-TAMPERED-SIG")), "tampered")
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature does not match the body
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 16: a signature that does not include its signer's certificate cannot identify anyone
--- request eval
checkin_request($::AUTH, UDID => "ID-NOCERTS")
--- more_headers eval
"Mdm-Signature: " . cms_b64(body_of(checkin_request($::AUTH, UDID => "ID-NOCERTS")),
    '-sign', '-nocerts', '-md', 'sha256', '-nosmimecap', signer_args("nocerts"))
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature does not carry its signer's certificate
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 17: expired device certificate
--- request eval
checkin_request($::AUTH, UDID => "ID-EXPIRED")
--- signed_by: expired expired
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate has expired
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
EXISTS mdm:enr:{ID-EXPIRED} => 0



=== TEST 18: device certificate from a CA that is not in mdm_identity_ca
--- request eval
checkin_request($::AUTH, UDID => "ID-ROGUE")
--- signed_by: rogue issuer=rogue
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate is not issued by mdm_identity_ca
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
EXISTS mdm:enr:{ID-ROGUE} => 0



=== TEST 19: device certificate for server authentication only (EKU serverAuth)
--- request eval
checkin_request($::AUTH, UDID => "ID-SERVERAUTH")
--- signed_by: serverauth no_client_auth
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate is not for client authentication
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 20: signingTime a few seconds before a fresh certificate's notBefore: clock skew, accepted (default mdm_signature_skew)
--- request eval
checkin_request($::AUTH, UDID => "ID-SKEW-5")
--- signed_by: skew5 not_before_in=5
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{ID-SKEW-5} " . cert_sha256(device_cert("skew5", not_before_in => 5)), qr/^\d{10}$/ ] ]
--- no_error_log
[error]



=== TEST 21: a certificate valid only 60 s from now, no signingTime: within the default skew, accepted
--- request eval
checkin_request($::AUTH, UDID => "ID-SKEW-60-NOATTR")
--- signed_by: skew60-noattr not_before_in=60
--- signature_opts: noattr
--- error_code: 200
--- no_error_log
[error]



=== TEST 22: mdm_signature_skew 120 accepts a signingTime 60 s before notBefore
--- request eval
checkin_request("/skew120/checkin $::AUTH", UDID => "ID-SKEW120-60")
--- signed_by: skew120-60 not_before_in=60
--- error_code: 200
--- no_error_log
[error]



=== TEST 23: mdm_signature_skew 0: a signingTime 30 s before notBefore is rejected
--- request eval
checkin_request("/skew0/checkin $::AUTH", UDID => "ID-SKEW0-SIG")
--- signed_by: skew0-sig not_before_in=30
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature signingTime is before the certificate's notBefore
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 24: mdm_signature_skew 0: a certificate valid only 30 s from now is not yet valid (no signingTime)
--- request eval
checkin_request("/skew0/checkin $::AUTH", UDID => "ID-SKEW0-NOATTR")
--- signed_by: skew0-noattr not_before_in=30
--- signature_opts: noattr
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate is not yet valid
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 25: default skew (300 s): a signingTime 900 s before notBefore is rejected
--- request eval
checkin_request($::AUTH, UDID => "ID-SKEW-900")
--- signed_by: skew900 not_before_in=900
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature signingTime is before the certificate's notBefore
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 26: default skew (300 s): a certificate valid only 900 s from now is not yet valid (no signingTime)
--- request eval
checkin_request($::AUTH, UDID => "ID-SKEW-900-NOATTR")
--- signed_by: skew900-noattr not_before_in=900
--- signature_opts: noattr
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate is not yet valid
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 27: TLS client certificate (ssl_verify_client optional_no_ca) identifies the device
--- request eval
checkin_request("/tls/dev $::AUTH", UDID => "ID-TLS-1")
--- error_code: 200
--- response_headers
X-Id: ID-TLS-1
--- redis_check eval
[
  [ "HGET mdm:enr:{ID-TLS-1} " . cert_sha256("tls-dev"), qr/^\d{10}$/ ],
  [ "GET mdm:certidx:" . cert_sha256("tls-dev"), "ID-TLS-1" ],
]
--- no_error_log
[error]



=== TEST 28: TLS without a client certificate: 400, no certificate
--- request eval
checkin_request("/tls/none $::AUTH", UDID => "ID-TLS-NONE")
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: no device certificate
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
EXISTS mdm:enr:{ID-TLS-NONE} => 0



=== TEST 29: TLS client certificate from a rogue CA (nginx lets it through with optional_no_ca; the module does not)
--- request eval
checkin_request("/tls/rogue $::AUTH", UDID => "ID-TLS-ROGUE")
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate is not issued by mdm_identity_ca
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 30: TLS: the intermediate sent in the handshake completes the chain to a root-only mdm_identity_ca
--- request eval
checkin_request("/tls/chain-root-ca $::AUTH", UDID => "ID-TLS-1")
--- error_code: 200
--- no_error_log
[error]



=== TEST 31: TLS: the leaf alone does not verify against a root-only mdm_identity_ca
--- request eval
checkin_request("/tls/leaf-root-ca $::AUTH", UDID => "ID-TLS-1")
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate is not issued by mdm_identity_ca
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 32: mdm_identity signature tls: no Mdm-Signature, so the TLS certificate decides
--- request eval
checkin_request("/tls/sig-tls $::AUTH", UDID => "ID-TLS-1")
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{ID-TLS-1} " . cert_sha256("tls-dev"), qr/^\d{10}$/ ] ]
--- no_error_log
[error]



=== TEST 33: mdm_identity signature tls: a present but bad Mdm-Signature decides, the good TLS certificate is not tried
--- request eval
checkin_request("/tls/sig-tls $::AUTH", UDID => "ID-TLS-1")
--- signed_by: expired
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate has expired
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 34: mdm_identity tls signature: the TLS certificate comes first and is the one bound, not the signer
--- request eval
checkin_request("/tls/tls-sig $::AUTH", UDID => "ID-TLS-FIRST")
--- signed_by: first-signer
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{ID-TLS-FIRST} " . cert_sha256("tls-first"), qr/^\d{10}$/ ],
  [ "EXISTS mdm:certidx:" . cert_sha256("first-signer"), "0" ],
]
--- no_error_log
[error]



=== TEST 35: certificate header, RFC 9440 (:base64 DER:)
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-9440")
--- more_headers eval
"X-Client-Cert: " . rfc9440_header("hdr-9440")
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{ID-HDR-9440} " . cert_sha256("hdr-9440"), qr/^\d{10}$/ ],
  [ "GET mdm:certidx:" . cert_sha256("hdr-9440"), "ID-HDR-9440" ],
]
--- no_error_log
[error]



=== TEST 36: certificate header, nginx's $ssl_client_escaped_cert (escaped PEM)
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-PEM")
--- more_headers eval
"X-Client-Cert: " . escaped_pem_header("hdr-pem")
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{ID-HDR-PEM} " . cert_sha256("hdr-pem"), qr/^\d{10}$/ ] ]
--- no_error_log
[error]



=== TEST 37: certificate header, escaped PEM with '+' for space (Go's QueryEscape)
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-PLUS")
--- more_headers eval
"X-Client-Cert: " . escaped_pem_header("hdr-plus", plus => 1)
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{ID-HDR-PLUS} " . cert_sha256("hdr-plus"), qr/^\d{10}$/ ] ]
--- no_error_log
[error]



=== TEST 38: certificate header with garbage
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-GARBAGE")
--- more_headers
X-Client-Cert: not-a-certificate%20at-all
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: certificate header is neither RFC 9440 nor escaped PEM
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
EXISTS mdm:enr:{ID-HDR-GARBAGE} => 0



=== TEST 39: certificate header, RFC 9440 form with bad base64
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-9440-B64")
--- more_headers
X-Client-Cert: :*** not base64 ***:
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: certificate header is not valid base64
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 40: certificate header, RFC 9440 form around something that is not DER
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-9440-DER")
--- more_headers eval
"X-Client-Cert: :" . encode_base64("definitely not a certificate", '') . ":"
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: certificate header is not a DER certificate
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 41: certificate header carrying an expired certificate
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-EXPIRED")
--- more_headers eval
"X-Client-Cert: " . rfc9440_header(device_cert("expired", expired => 1))
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate has expired
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 42: certificate header carrying a rogue certificate (escaped PEM)
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-ROGUE")
--- more_headers eval
"X-Client-Cert: " . escaped_pem_header(device_cert("rogue", issuer => "rogue"))
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: device certificate is not issued by mdm_identity_ca
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 43: header mode ignores Mdm-Signature: no header, no certificate
--- request eval
checkin_request("/hdr/checkin $::AUTH", UDID => "ID-HDR-NONE")
--- signed_by: hdr-none-signer
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: no device certificate
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 44: a real TLS terminator: proxy_set_header X-Client-Cert $ssl_client_escaped_cert
--- request eval
checkin_request("/tls/fwd $::AUTH", UDID => "ID-HDR-FWD")
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{ID-HDR-FWD} " . cert_sha256("tls-fwd"), qr/^\d{10}$/ ],
  [ "GET mdm:certidx:" . cert_sha256("tls-fwd"), "ID-HDR-FWD" ],
]
--- no_error_log
[error]



=== TEST 45: the TLS terminator without a client certificate sends no header: 400
--- request eval
checkin_request("/tls/fwd-none $::AUTH", UDID => "ID-HDR-FWD-NONE")
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: no device certificate
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 46: mdm_identity header X signature: without the header, the signature decides
--- request eval
checkin_request("/hdr-sig/checkin $::AUTH", UDID => "ID-HDR-SIG")
--- signed_by: hdr-sig
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{ID-HDR-SIG} " . cert_sha256("hdr-sig"), qr/^\d{10}$/ ] ]
--- no_error_log
[error]



=== TEST 47: mdm_identity header X signature: a garbage header decides, the good signature is not tried
--- request eval
checkin_request("/hdr-sig/checkin $::AUTH", UDID => "ID-HDR-SIG")
--- more_headers
X-Client-Cert: garbage
--- signed_by: hdr-sig
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: certificate header is neither RFC 9440 nor escaped PEM
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 48: mdm_identity signature header X: a tampered signature decides, the good header is not tried
--- request eval
checkin_request("/sig-hdr/checkin $::AUTH", UDID => "ID-SIG-HDR")
--- more_headers eval
"X-Client-Cert: " . rfc9440_header("sig-hdr") . "\n"
. "Mdm-Signature: " . tampered_signature(body_of(checkin_request("/sig-hdr/checkin $::AUTH", UDID => "ID-SIG-HDR")), "sig-hdr")
--- error_code: 400
--- error_log
mdm: request from enrollment "-" answered 400: Mdm-Signature does not match the body
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 49: mdm_identity off needs mdm_cert_auth off
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity off;
}
--- must_die
--- error_log
"mdm_identity off" needs "mdm_cert_auth off"



=== TEST 50: mdm_identity off with mdm_cert_auth off: anyone is accepted, nothing is bound
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity off;
    mdm_cert_auth off;
}
--- request eval
checkin_request($::AUTH, UDID => "ID-OFF")
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{ID-OFF} enabled", "0" ],
  [ cert_bindings("ID-OFF"), [] ],
]
--- no_error_log
[error]



=== TEST 51: mdm_checkin needs mdm_identity_ca
--- config
location = /mdm/checkin {
    mdm_checkin;
}
--- must_die
--- error_log
need "mdm_identity_ca"



=== TEST 52: mdm_identity_ca must hold a self-signed root
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/int.pem;
}
--- must_die
--- error_log
holds no self-signed root certificate



=== TEST 53: unknown identity source
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity signature client-cert;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- must_die
--- error_log
invalid identity source "client-cert"
