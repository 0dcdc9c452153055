# `mdm_identity header NAME from=...` (issue 9 #4): a certificate header is
# trusted only from the addresses of the TLS terminators that set it, matched
# against the connection's peer address (never X-Forwarded-For). From any
# other address the header is ignored; if nothing else identifies the device
# the request is refused with 403 (never 401) and one [error] line. A header
# source without from= does not start; `from=any` says "every client" out loud.
#
# The test client connects from 127.0.0.1.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

no_shuffle();

mdm_defaults(
    http_config => q{
        mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;

        # a terminator on the same host, over a UNIX-domain socket
        server {
            listen unix:$TEST_NGINX_SERVER_ROOT/mdm.sock;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;

            location = /unix/checkin {
                mdm_checkin;
                mdm_identity header X-Client-Cert from=unix:;
            }

            location = /unix-v4/checkin {
                mdm_checkin;
                mdm_identity header X-Client-Cert from=127.0.0.0/8;
            }
        }
    },
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;

        # 127.0.0.1 is not a terminator here
        location = /other/checkin {
            mdm_checkin;
            mdm_identity header X-Client-Cert from=127.0.0.2/32;
        }

        location = /loopback/checkin {
            mdm_checkin;
            mdm_identity header X-Client-Cert from=10.0.0.0/8,127.0.0.0/8;
        }

        location = /v6/checkin {
            mdm_checkin;
            mdm_identity header X-Client-Cert from=::1,fd00::/8,127.0.0.1;
        }

        location = /v6only/checkin {
            mdm_checkin;
            mdm_identity header X-Client-Cert from=::1/128,unix:;
        }

        location = /any/checkin {
            mdm_checkin;
            mdm_identity header X-Client-Cert from=any;
        }

        location /via-unix/ {
            proxy_pass http://unix:$TEST_NGINX_SERVER_ROOT/mdm.sock:/;
        }

        location = /other-sig/checkin {
            mdm_checkin;
            mdm_identity header X-Client-Cert from=127.0.0.2 signature;
        }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

our $AUTH = "nanomdm/mdm/testdata/Authenticate.2.plist";

our $ERR = qr/\[error\] \d+#\d+: (?:\*\d+ )?\K.*?(?=, client: |$)/;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(grep_error_log => $ERR)
        if defined $block->grep_error_log_out
           && !defined $block->grep_error_log;
});

run_tests();

__DATA__

=== TEST 1: a good certificate header from an address outside from= is ignored: 403, one line, nothing stored
--- request eval
checkin_request("/other/checkin $::AUTH", UDID => "HDR-OTHER")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nX-Client-Cert: " . rfc9440_header("hdr-from-1")
--- error_code: 403
--- grep_error_log_out
mdm: request from enrollment "-" answered 403: certificate header "x-client-cert" from an address outside its from= ignored, and no other device certificate
--- redis_check eval
[ [ "EXISTS mdm:enr:{HDR-OTHER}", "0" ], [ "EXISTS mdm:certidx:" . cert_sha256("hdr-from-1"), "0" ] ]



=== TEST 2: X-Forwarded-For naming a trusted address changes nothing: the peer address decides
--- request eval
checkin_request("/other/checkin $::AUTH", UDID => "HDR-XFF")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nX-Forwarded-For: 127.0.0.2\nX-Real-IP: 127.0.0.2\n"
. "X-Client-Cert: " . rfc9440_header("hdr-from-1")
--- error_code: 403
--- grep_error_log_out
mdm: request from enrollment "-" answered 403: certificate header "x-client-cert" from an address outside its from= ignored, and no other device certificate



=== TEST 3: without the header, from an untrusted address: 400, no certificate (as before)
--- request eval
checkin_request("/other/checkin $::AUTH", UDID => "HDR-NONE")
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: no device certificate: no Mdm-Signature header, TLS client certificate or certificate header



=== TEST 4: the same header from an address inside from= (a CIDR in a list) identifies the device
--- request eval
checkin_request("/loopback/checkin $::AUTH", UDID => "HDR-LOOP")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nX-Client-Cert: " . rfc9440_header("hdr-from-2")
--- error_code: 200
--- redis_check eval
[ [ "GET mdm:certidx:" . cert_sha256("hdr-from-2"), "HDR-LOOP" ] ]
--- no_error_log
[error]



=== TEST 5: a list with IPv6 entries and a single IPv4 address
--- request eval
checkin_request("/v6/checkin $::AUTH", UDID => "HDR-V6")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nX-Client-Cert: " . escaped_pem_header("hdr-from-3")
--- error_code: 200
--- no_error_log
[error]



=== TEST 6: a list without the IPv4 loopback (IPv6 and unix: only) refuses it
--- request eval
checkin_request("/v6only/checkin $::AUTH", UDID => "HDR-V6ONLY")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nX-Client-Cert: " . rfc9440_header("hdr-from-4")
--- error_code: 403
--- grep_error_log_out
mdm: request from enrollment "-" answered 403: certificate header "x-client-cert" from an address outside its from= ignored, and no other device certificate



=== TEST 7: from=any trusts every client, as said
--- request eval
checkin_request("/any/checkin $::AUTH", UDID => "HDR-ANY")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nX-Client-Cert: " . rfc9440_header("hdr-from-5")
--- error_code: 200
--- no_error_log
[error]



=== TEST 8: an ignored header does not stop the next source: the signature identifies the device
--- request eval
checkin_request("/other-sig/checkin $::AUTH", UDID => "HDR-SIG")
--- signed_by: hdr-from-sig
--- more_headers eval
# a rogue certificate: refused, were the header trusted
"Content-Type: $t::MDM::CheckinType\nX-Client-Cert: "
. rfc9440_header(device_cert("hdr-from-rogue", issuer => "rogue"))
--- error_code: 200
--- redis_check eval
[ [ "GET mdm:certidx:" . cert_sha256("hdr-from-sig"), "HDR-SIG" ] ]
--- no_error_log
[error]



=== TEST 9: from=unix: trusts a terminator on a UNIX-domain socket
--- request eval
checkin_request("/via-unix/unix/checkin $::AUTH", UDID => "HDR-UNIX")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nX-Client-Cert: " . rfc9440_header("hdr-from-6")
--- error_code: 200
--- redis_check eval
[ [ "GET mdm:certidx:" . cert_sha256("hdr-from-6"), "HDR-UNIX" ] ]
--- no_error_log
[error]



=== TEST 10: a UNIX-domain peer does not match IPv4 addresses
--- request eval
checkin_request("/via-unix/unix-v4/checkin $::AUTH", UDID => "HDR-UNIX-V4")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nX-Client-Cert: " . rfc9440_header("hdr-from-7")
--- error_code: 403
--- grep_error_log_out
mdm: request from enrollment "-" answered 403: certificate header "x-client-cert" from an address outside its from= ignored, and no other device certificate



=== TEST 11: a header source without from= does not start
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity signature header X-Client-Cert;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*"header X-Client-Cert" needs "from=CIDR\[,CIDR\.\.\.\]" after it, naming the addresses of the TLS terminators that set it \(and strip it from clients\), or "from=any" to trust it from every client in \S+nginx\.conf:\d+/



=== TEST 12: nor with from= on one header source only
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity header X-Client-Cert from=any header X-Other-Cert tls;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*"header X-Other-Cert" needs "from=/



=== TEST 13: a bad address in from= does not start
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity header X-Client-Cert from=10.0.0.0/8,terminator.example;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*invalid address "terminator\.example" in "from=10\.0\.0\.0\/8,terminator\.example"/



=== TEST 14: an empty from= does not start
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity header X-Client-Cert from=;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*invalid address "" in "from="/



=== TEST 15: from= belongs to a header source only
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_identity signature from=any;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*invalid identity source "from=any"/
