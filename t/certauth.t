# mdm_cert_auth: NanoMDM's certauth, binding identity certificates to
# enrollments. Authenticate binds (mdm:enr:{DEVICE} field sha256 -> notAfter,
# mdm:certidx:sha256 -> DEVICE); every other message must come with a bound
# certificate; renewals keep the old binding; `retro` binds enrollments that
# have none; `off` checks and binds nothing. Every rejection is a 400 with
# exactly one [error] line.
#
# The blocks build on each other (no_shuffle): one Redis per file.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

use Time::Local qw(timegm);

no_shuffle();

# notAfter of a device_cert() in Unix seconds, as openssl prints it.
my %Mon = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5,
           Jul => 6, Aug => 7, Sep => 8, Oct => 9, Nov => 10, Dec => 11);
sub not_after {
    my ($name) = @_;
    my ($st, $out, $err) = t::MDM::run_cmd('openssl', 'x509', '-noout',
        '-enddate', '-in', device_cert($name)->{cert});
    die "openssl x509: $err" if $st;
    $out =~ /notAfter=(\w{3})\s+(\d+) (\d+):(\d+):(\d+) (\d{4}) GMT/
        or die "cannot parse '$out'";
    return timegm($5, $4, $3, $2, $Mon{$1}, $6);
}

{
    no strict 'refs';
    *{"Test::Base::Filter::not_after"} = \&not_after;
}

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;

        location = /mdm/checkin {
            mdm_checkin;
            add_header X-Id $mdm_enrollment_id always;
        }

        location = /retro/checkin {
            mdm_checkin;
            mdm_cert_auth retro;
        }

        location = /off/checkin {
            mdm_checkin;
            mdm_cert_auth off;
        }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

our $AUTH = "nanomdm/mdm/testdata/Authenticate.2.plist";
our $TOKEN = "nanomdm/mdm/testdata/TokenUpdate.2.plist";
our $USER = "commandment/testdata/TokenUpdate/10.12.2-user.xml";
our $CHECKOUT = "commandment/testdata/CheckOut/10.11.x.xml";
our $USERID = "A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883";
our $EXPIRED = "0" x 63 . "e";    # a binding whose certificate expired

run_tests();

__DATA__

=== TEST 1: Authenticate binds the certificate: sha256 -> notAfter, and the index sha256 -> device
--- request eval
checkin_request($::AUTH, UDID => "CA-D1")
--- signed_by: c1
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-D1"), [ cert_sha256("c1"), not_after("c1") ] ],
  [ "GET mdm:certidx:" . cert_sha256("c1"), "CA-D1" ],
]
--- no_error_log
[error]



=== TEST 2: TokenUpdate with the bound certificate
--- request eval
checkin_request($::TOKEN, UDID => "CA-D1")
--- signed_by: c1
--- error_code: 200
--- redis_check
HGET mdm:enr:{CA-D1} enabled => 1
HGET mdm:enr:{CA-D1} token_update_tally => 1
--- no_error_log
[error]



=== TEST 3: TokenUpdate with a valid certificate that is not bound: rejected, nothing changes
--- request eval
checkin_request($::TOKEN, UDID => "CA-D1")
--- signed_by: c2
--- error_code: 400
--- error_log
mdm: TokenUpdate from enrollment "CA-D1" answered 400: certificate is not bound to this enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ "HGET mdm:enr:{CA-D1} token_update_tally", "1" ],
  [ cert_bindings("CA-D1"), [ cert_sha256("c1"), not_after("c1") ] ],
  [ "EXISTS mdm:certidx:" . cert_sha256("c2"), "0" ],
]



=== TEST 4: CheckOut with an unbound certificate: rejected, the device stays enabled
--- request eval
checkin_request($::CHECKOUT, UDID => "CA-D1")
--- signed_by: c2
--- error_code: 400
--- error_log
mdm: CheckOut from enrollment "CA-D1" answered 400: certificate is not bound to this enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
HGET mdm:enr:{CA-D1} enabled => 1
HEXISTS mdm:enr:{CA-D1} checked_out_at => 0



=== TEST 5: SetBootstrapToken with an unbound certificate: rejected, nothing escrowed
--- request eval
checkin_request($::CHECKOUT, UDID => "CA-D1", MessageType => "SetBootstrapToken", Topic => undef,
    BootstrapToken => \'<data>Ym9vdHN0cmFwLXRva2Vu</data>')
--- signed_by: c2
--- error_code: 400
--- error_log
mdm: SetBootstrapToken from enrollment "CA-D1" answered 400: certificate is not bound to this enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check
HEXISTS mdm:enr:{CA-D1} bootstrap_token => 0



=== TEST 6: the user channel is checked against its device's binding: bound certificate accepted
--- request eval
checkin_request($::USER, UDID => "CA-D1")
--- signed_by: c1
--- error_code: 200
--- response_headers eval
"X-Id: CA-D1:$::USERID"
--- redis_check eval
[
  [ "HGET mdm:enr:{CA-D1}:$::USERID enabled", "1" ],
  [ cert_bindings("CA-D1:$::USERID"), [] ],
]
--- no_error_log
[error]



=== TEST 7: the user channel with a certificate not bound to its device: rejected
--- request eval
checkin_request($::USER, UDID => "CA-D1")
--- signed_by: c2
--- error_code: 400
--- error_log eval
qq{mdm: TokenUpdate from enrollment "CA-D1:$::USERID" answered 400: certificate is not bound to this enrollment}
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[ [ "HGET mdm:enr:{CA-D1}:$::USERID token_update_tally", "1" ] ]



=== TEST 8: Authenticate of another device with a certificate bound to CA-D1: refused, nothing stored
--- request eval
checkin_request($::AUTH, UDID => "CA-D2")
--- signed_by: c1
--- error_code: 400
--- error_log
mdm: Authenticate from enrollment "CA-D2" answered 400: certificate is already bound to another enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ "EXISTS mdm:enr:{CA-D2}", "0" ],
  [ cert_bindings("CA-D2"), [] ],
  [ "GET mdm:certidx:" . cert_sha256("c1"), "CA-D1" ],
]



=== TEST 9: the same device may Authenticate again with its bound certificate
--- request eval
checkin_request($::AUTH, UDID => "CA-D1")
--- signed_by: c1
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-D1"), [ cert_sha256("c1"), not_after("c1") ] ],
  [ "GET mdm:certidx:" . cert_sha256("c1"), "CA-D1" ],
]
--- no_error_log
[error]



=== TEST 10: renewal: Authenticate with a new certificate adds its binding and keeps the old one
--- request eval
checkin_request($::AUTH, UDID => "CA-D1")
--- signed_by: c3
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{CA-D1} " . cert_sha256("c3"), not_after("c3") ],
  [ "HGET mdm:enr:{CA-D1} " . cert_sha256("c1"), not_after("c1") ],
  [ cert_bindings("CA-D1"), sub { @{ $_[0] } == 4 } ],
  [ "GET mdm:certidx:" . cert_sha256("c3"), "CA-D1" ],
  [ "GET mdm:certidx:" . cert_sha256("c1"), "CA-D1" ],
]
--- no_error_log
[error]



=== TEST 11: after the renewal the old certificate is still accepted
--- request eval
checkin_request($::TOKEN, UDID => "CA-D1")
--- signed_by: c1
--- error_code: 200
--- redis_check
HGET mdm:enr:{CA-D1} enabled => 1
HGET mdm:enr:{CA-D1} token_update_tally => 1
--- no_error_log
[error]



=== TEST 12: ... and so is the new one
--- request eval
checkin_request($::TOKEN, UDID => "CA-D1")
--- signed_by: c3
--- error_code: 200
--- redis_check
HGET mdm:enr:{CA-D1} token_update_tally => 2
--- no_error_log
[error]



=== TEST 13: a still unbound certificate is still rejected after the renewal
--- request eval
checkin_request($::TOKEN, UDID => "CA-D1")
--- signed_by: c2
--- error_code: 400
--- error_log
mdm: TokenUpdate from enrollment "CA-D1" answered 400: certificate is not bound to this enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 14: Authenticate prunes expired bindings (and their index), keeps the valid ones
--- redis_setup eval
[ [ "HSET", "mdm:enr:{CA-D1}", $::EXPIRED, "1000000000" ],
  [ "SET", "mdm:certidx:$::EXPIRED", "CA-D1" ] ]
--- request eval
checkin_request($::AUTH, UDID => "CA-D1")
--- signed_by: c3
--- error_code: 200
--- redis_check eval
[
  [ "HEXISTS mdm:enr:{CA-D1} $::EXPIRED", "0" ],
  [ "EXISTS mdm:certidx:$::EXPIRED", "0" ],
  [ cert_bindings("CA-D1"), sub { @{ $_[0] } == 4 } ],
  [ "HEXISTS mdm:enr:{CA-D1} " . cert_sha256("c1"), "1" ],
  [ "HEXISTS mdm:enr:{CA-D1} " . cert_sha256("c3"), "1" ],
]
--- no_error_log
[error]



=== TEST 15: a message for an enrollment that never did Authenticate
--- request eval
checkin_request($::TOKEN, UDID => "CA-UNKNOWN")
--- signed_by: c9
--- error_code: 400
--- error_log
mdm: TokenUpdate from enrollment "CA-UNKNOWN" answered 400: unknown enrollment: no Authenticate for device CA-UNKNOWN
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ "EXISTS mdm:enr:{CA-UNKNOWN}", "0" ],
  [ cert_bindings("CA-UNKNOWN"), [] ],
  [ "EXISTS mdm:certidx:" . cert_sha256("c9"), "0" ],
]



=== TEST 16: retro does not bind an enrollment that never did Authenticate either
--- request eval
checkin_request("/retro/checkin $::TOKEN", UDID => "CA-UNKNOWN")
--- signed_by: c9
--- error_code: 400
--- error_log
mdm: TokenUpdate from enrollment "CA-UNKNOWN" answered 400: unknown enrollment: no Authenticate for device CA-UNKNOWN
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ cert_bindings("CA-UNKNOWN"), [] ],
  [ "EXISTS mdm:certidx:" . cert_sha256("c9"), "0" ],
]



=== TEST 17: the user channel of a device that never did Authenticate
--- request eval
checkin_request($::USER, UDID => "CA-UNKNOWN")
--- signed_by: c9
--- error_code: 400
--- error_log eval
qq{mdm: TokenUpdate from enrollment "CA-UNKNOWN:$::USERID" answered 400: unknown enrollment: no Authenticate for device CA-UNKNOWN}
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]



=== TEST 18: mdm_cert_auth off: Authenticate checks nothing and binds nothing
--- request eval
checkin_request("/off/checkin $::AUTH", UDID => "CA-D3")
--- signed_by: c4
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{CA-D3} enabled", "0" ],
  [ cert_bindings("CA-D3"), [] ],
  [ "EXISTS mdm:certidx:" . cert_sha256("c4"), "0" ],
]
--- no_error_log
[error]



=== TEST 19: mdm_cert_auth on: the enrollment made without binding is refused
--- request eval
checkin_request($::TOKEN, UDID => "CA-D3")
--- signed_by: c4
--- error_code: 400
--- error_log
mdm: TokenUpdate from enrollment "CA-D3" answered 400: certificate is not bound to this enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ cert_bindings("CA-D3"), [] ],
  [ "HGET mdm:enr:{CA-D3} enabled", "0" ],
]



=== TEST 20: mdm_cert_auth retro: the enrollment without any binding gets the presented certificate bound
--- request eval
checkin_request("/retro/checkin $::TOKEN", UDID => "CA-D3")
--- signed_by: c4
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-D3"), [ cert_sha256("c4"), not_after("c4") ] ],
  [ "GET mdm:certidx:" . cert_sha256("c4"), "CA-D3" ],
  [ "HGET mdm:enr:{CA-D3} enabled", "1" ],
]
--- no_error_log
[error]



=== TEST 21: retro never replaces an existing binding: another certificate is refused
--- request eval
checkin_request("/retro/checkin $::TOKEN", UDID => "CA-D3")
--- signed_by: c5
--- error_code: 400
--- error_log
mdm: TokenUpdate from enrollment "CA-D3" answered 400: certificate is not bound to this enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ cert_bindings("CA-D3"), [ cert_sha256("c4"), not_after("c4") ] ],
  [ "EXISTS mdm:certidx:" . cert_sha256("c5"), "0" ],
]



=== TEST 22: the binding made by retro holds for mdm_cert_auth on too
--- request eval
checkin_request($::TOKEN, UDID => "CA-D3")
--- signed_by: c4
--- error_code: 200
--- redis_check
HGET mdm:enr:{CA-D3} token_update_tally => 2
--- no_error_log
[error]



=== TEST 23: Authenticate of CA-D3 with CA-D1's certificate is refused and leaves CA-D3 as it was
--- redis_setup
RPUSH mdm:q:{CA-D3} cmd-1
--- request eval
checkin_request($::AUTH, UDID => "CA-D3")
--- signed_by: c1
--- error_code: 400
--- error_log
mdm: Authenticate from enrollment "CA-D3" answered 400: certificate is already bound to another enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ "HGET mdm:enr:{CA-D3} enabled", "1" ],
  [ "HGET mdm:enr:{CA-D3} token_update_tally", "2" ],
  [ "LRANGE mdm:q:{CA-D3} 0 -1", [ "cmd-1" ] ],
  [ cert_bindings("CA-D3"), [ cert_sha256("c4"), not_after("c4") ] ],
  [ "GET mdm:certidx:" . cert_sha256("c1"), "CA-D1" ],
]



=== TEST 24: mdm_cert_auth off: a certificate bound to CA-D1 may Authenticate CA-D4; the binding stays CA-D1's
--- request eval
checkin_request("/off/checkin $::AUTH", UDID => "CA-D4")
--- signed_by: c1
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-D4"), [] ],
  [ "GET mdm:certidx:" . cert_sha256("c1"), "CA-D1" ],
]
--- no_error_log
[error]



=== TEST 25: retro never binds a certificate that is bound elsewhere
--- request eval
checkin_request("/retro/checkin $::TOKEN", UDID => "CA-D4")
--- signed_by: c1
--- error_code: 400
--- error_log
mdm: TokenUpdate from enrollment "CA-D4" answered 400: certificate is not bound to this enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ cert_bindings("CA-D4"), [] ],
  [ "GET mdm:certidx:" . cert_sha256("c1"), "CA-D1" ],
  [ "HGET mdm:enr:{CA-D4} enabled", "0" ],
]



=== TEST 26: retro on the user channel binds the device, when the device has no binding
--- request eval
checkin_request("/retro/checkin $::USER", UDID => "CA-D4")
--- signed_by: c6
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-D4"), [ cert_sha256("c6"), not_after("c6") ] ],
  [ "GET mdm:certidx:" . cert_sha256("c6"), "CA-D4" ],
  [ cert_bindings("CA-D4:$::USERID"), [] ],
]
--- no_error_log
[error]



=== TEST 27: retro after an admin dropped the enrollment's bindings: a fresh certificate is bound
--- redis_setup eval
[ cert_unbind_all("CA-D1") ]
--- request eval
checkin_request("/retro/checkin $::TOKEN", UDID => "CA-D1")
--- signed_by: c7
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-D1"), [ cert_sha256("c7"), not_after("c7") ] ],
  [ "GET mdm:certidx:" . cert_sha256("c7"), "CA-D1" ],
]
--- no_error_log
[error]



=== TEST 28: mdm_cert_auth off: an unbound certificate is accepted for TokenUpdate, and not bound
--- request eval
checkin_request("/off/checkin $::TOKEN", UDID => "CA-D1")
--- signed_by: c8
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-D1"), [ cert_sha256("c7"), not_after("c7") ] ],
  [ "EXISTS mdm:certidx:" . cert_sha256("c8"), "0" ],
]
--- no_error_log
[error]



=== TEST 29: mdm_cert_auth retro refuses a certificate bound to another device at Authenticate, like on
--- request eval
checkin_request("/retro/checkin $::AUTH", UDID => "CA-D5")
--- signed_by: c7
--- error_code: 400
--- error_log
mdm: Authenticate from enrollment "CA-D5" answered 400: certificate is already bound to another enrollment
--- grep_error_log eval
qr/\[error\]/
--- grep_error_log_out
[error]
--- redis_check eval
[
  [ "EXISTS mdm:enr:{CA-D5}", "0" ],
  [ "GET mdm:certidx:" . cert_sha256("c7"), "CA-D1" ],
]



=== TEST 30: mdm_cert_auth retro binds at Authenticate like on
--- request eval
checkin_request("/retro/checkin $::AUTH", UDID => "CA-D5")
--- signed_by: c5
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-D5"), [ cert_sha256("c5"), not_after("c5") ] ],
  [ "GET mdm:certidx:" . cert_sha256("c5"), "CA-D5" ],
]
--- no_error_log
[error]



=== TEST 31: mdm_cert_auth takes on, off or retro
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_cert_auth sometimes;
}
--- must_die
--- error_log
invalid value "sometimes"



=== TEST 31: an enrollment bound by an earlier version (mdm:certs:{ID}) keeps working; its bindings move into the enrollment hash
--- redis_setup eval
[ [ "HSET", "mdm:enr:{CA-L1}", "type", "Device", "enabled", "1", "device_id", "CA-L1",
    "cert_hash", cert_sha256("c10") ],
  [ "HSET", "mdm:certs:{CA-L1}", cert_sha256("c10"), not_after("c10") ],
  [ "SET", "mdm:certidx:" . cert_sha256("c10"), "CA-L1" ] ]
--- request eval
checkin_request($::TOKEN, UDID => "CA-L1")
--- signed_by: c10
--- error_code: 200
--- redis_check eval
[
  [ cert_bindings("CA-L1"), [ cert_sha256("c10"), not_after("c10") ] ],
  [ "EXISTS mdm:certs:{CA-L1}", "0" ],
  [ "HGET mdm:enr:{CA-L1} enabled", "1" ],
]
--- no_error_log
[error]



=== TEST 32: a re-Authenticate of such an enrollment keeps its old binding and adds the new one
--- redis_setup eval
[ [ "HSET", "mdm:enr:{CA-L2}", "type", "Device", "enabled", "1" ],
  [ "HSET", "mdm:certs:{CA-L2}", cert_sha256("c11"), not_after("c11") ],
  [ "SET", "mdm:certidx:" . cert_sha256("c11"), "CA-L2" ] ]
--- request eval
checkin_request($::AUTH, UDID => "CA-L2")
--- signed_by: c12
--- error_code: 200
--- redis_check eval
my @b = sort { $a->[0] cmp $b->[0] }
         [ cert_sha256("c11"), not_after("c11") ],
         [ cert_sha256("c12"), not_after("c12") ];
[
  [ cert_bindings("CA-L2"), [ map { @$_ } @b ] ],
  [ "EXISTS mdm:certs:{CA-L2}", "0" ],
  [ "GET mdm:certidx:" . cert_sha256("c12"), "CA-L2" ],
]
--- no_error_log
[error]
