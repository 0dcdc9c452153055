# Who may enroll as whom (issue 9 #13): mdm_reenroll any | bound |
# unenrolled, the Takeover event and warning when an enrollment bound to an
# unexpired certificate is taken over by another one, and blocked devices
# (mdm:block:{DID}, set by POST /v1/enrollments/ID/block) answered 403 on
# every check-in and connect, never 401.
#
# Blocks run in order and share Redis.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

no_shuffle();

mdm_server_defaults(q{
    location = /bound/mdm { mdm_server; mdm_reenroll bound; }
    location = /unenrolled/mdm { mdm_server; mdm_reenroll unenrolled; }
    location /v1/ { mdm_api; mdm_api_key policy-key; }
});

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $REPORT_CT = 'Content-Type: application/x-apple-aspen-mdm';
our $AUTH = 'nanomdm/mdm/testdata/Authenticate.2.plist';
our $TOKEN = 'nanomdm/mdm/testdata/TokenUpdate.2.plist';
our $CHECKOUT = 'commandment/testdata/CheckOut/10.11.x.xml';

use MIME::Base64 qw(encode_base64);
our $API_AUTH = 'Authorization: Basic ' . encode_base64('nanomdm:policy-key', '');

sub auth { checkin_request(($_[0] // '/mdm') . " $AUTH", UDID => $MAC) }
sub token { checkin_request("/mdm $TOKEN", UDID => $MAC) }

sub idle {
    my $body = plist_set(vector('commandment/testdata/NotNow/iOS-11.3.1.xml'),
                         UDID => $MAC, Status => 'Idle', CommandUUID => undef);
    $body =~ s/^\s+|\s+\z//g;
    return "PUT /mdm\n$body";
}

sub takeovers {
    my $r = redis('XRANGE', 'mdm:events', '-', '+');
    return [ map { +{ @{ $_->[1] } } } grep { { @{ $_->[1] } }->{type} eq 'Takeover' } @$r ];
}

run_tests();

__DATA__

=== TEST 1: enroll with certificate "owner"
--- redis_setup
FLUSHALL
--- request eval
[ ::auth(), ::token() ]
--- signed_by: owner
--- error_code eval
[ 200, 200 ]
--- redis_check eval
[ [ "HGET mdm:enr:{$::MAC} enabled", "1" ] ]
--- no_error_log
[error]
[warn]



=== TEST 2: mdm_reenroll bound: another certificate cannot Authenticate as the device (403, both hashes logged); nothing changes
--- request eval
::auth("/bound/mdm")
--- signed_by: thief
--- error_code: 403
--- redis_check eval
[ [ "HGET mdm:enr:{$::MAC} enabled", "1" ],
  [ "HEXISTS mdm:enr:{$::MAC} " . cert_sha256("thief"), "0" ],
  [ "EXISTS mdm:certidx:" . cert_sha256("thief"), "0" ],
  [ "PING", sub { @{ ::takeovers() } == 0 } ] ]
--- grep_error_log eval
qr/\[(?:error|warn)\].*/
--- grep_error_log_out eval
[ qr/^\[error\] .*Authenticate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 403: Authenticate with certificate ${\ cert_sha256("thief")} for an enrollment bound to unexpired certificate ${\ cert_sha256("owner")} \(mdm_reenroll bound\).*\n\z/ ]



=== TEST 3: mdm_reenroll bound: the bound certificate re-enrolls (no takeover)
--- request eval
[ ::auth("/bound/mdm"), ::token() ]
--- signed_by: owner
--- error_code eval
[ 200, 200 ]
--- redis_check eval
[ [ "PING", sub { @{ ::takeovers() } == 0 } ] ]
--- no_error_log
[error]
[warn]



=== TEST 4: mdm_reenroll unenrolled: an enrolled device cannot be taken over
--- request eval
::auth("/unenrolled/mdm")
--- signed_by: thief
--- error_code: 403
--- error_log eval
qr/answered 403: Authenticate with certificate ${\ cert_sha256("thief")} for an enrolled device bound to unexpired certificate ${\ cert_sha256("owner")} \(mdm_reenroll unenrolled\)/
--- redis_check eval
[ [ "HGET mdm:enr:{$::MAC} enabled", "1" ] ]



=== TEST 5: (the device checks out)
--- request eval
checkin_request("/mdm $::CHECKOUT", UDID => $::MAC)
--- signed_by: owner
--- error_code: 200



=== TEST 6: ... once it checked out, another certificate may enroll it: a Takeover event and a warning with both hashes
--- request eval
::auth("/unenrolled/mdm")
--- signed_by: newcomer
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{$::MAC} enabled", "0" ],
  [ "GET mdm:certidx:" . cert_sha256("newcomer"), $::MAC ],
  [ "PING", sub { my $t = ::takeovers();
                  @$t == 1 && $t->[0]{old_cert_hashes} eq cert_sha256("owner")
                  && $t->[0]{new_cert_hash} eq cert_sha256("newcomer")
                  && $t->[0]{id} eq $::MAC && $t->[0]{time} =~ /^\d{13}$/ } ] ]
--- error_log eval
qr/\[warn\] .*mdm: enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" taken over by certificate ${\ cert_sha256("newcomer")} from unexpired certificate ${\ cert_sha256("owner")}, client/
--- no_error_log
[error]



=== TEST 7: (the new owner enables the enrollment)
--- request eval
::token()
--- signed_by: newcomer
--- error_code: 200



=== TEST 8: mdm_reenroll any (the default, as NanoMDM): an enrolled device is taken over, with the event and the warning naming every unexpired binding
--- request eval
::auth()
--- signed_by: thief
--- error_code: 200
--- redis_check eval
[ [ "GET mdm:certidx:" . cert_sha256("thief"), $::MAC ],
  [ "PING", sub { my $t = ::takeovers();
                  @$t == 2 && $t->[1]{old_cert_hashes} eq CORE::join(",", sort(cert_sha256("owner"), cert_sha256("newcomer")))
                  && $t->[1]{new_cert_hash} eq cert_sha256("thief") } ] ]
--- error_log eval
qr/\[warn\] .*taken over by certificate ${\ cert_sha256("thief")} from unexpired certificate (${\ cert_sha256("owner")}|${\ cert_sha256("newcomer")}),/
--- no_error_log
[error]



=== TEST 9: bindings that expired do not count: no takeover
--- redis_setup eval
sub { my $k = "mdm:enr:{$::MAC}";
      for my $h (keys %{ { @{ redis("HGETALL", $k) } } }) {
          redis("HSET", $k, $h, "1000000000") if $h =~ /^[0-9a-f]{64}$/;
      }
      redis("DEL", "mdm:events") }
--- request eval
::auth("/bound/mdm")
--- signed_by: late
--- error_code: 200
--- redis_check eval
[ [ "PING", sub { @{ ::takeovers() } == 0 } ],
  [ "HEXISTS mdm:enr:{$::MAC} " . cert_sha256("owner"), "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 10: a blocked device: every check-in is 403 with one line, never 401
--- redis_setup eval
sub { redis("SET", "mdm:block:{$::MAC}", "1700000000000") }
--- request eval
::token()
--- signed_by: late
--- error_code: 403
--- grep_error_log eval
qr/\[(?:error|warn)\].*/
--- grep_error_log_out eval
[ qr/^\[error\] .*TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 403: the device is blocked \(mdm:block\).*\n\z/ ]



=== TEST 11: blocked: Authenticate is 403 too (the block survives it)
--- request eval
::auth()
--- signed_by: late
--- error_code: 403
--- error_log
Authenticate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 403: the device is blocked (mdm:block)
--- redis_check eval
[ [ "EXISTS mdm:block:{$::MAC}", "1" ] ]



=== TEST 12: blocked: a connect is 403 with one line
--- more_headers eval
$::REPORT_CT
--- request eval
::idle()
--- signed_by: late
--- error_code: 403
--- grep_error_log eval
qr/\[(?:error|warn)\].*/
--- grep_error_log_out eval
[ qr/^\[error\] .*Idle from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 403: the device is blocked \(mdm:block\).*\n\z/ ]



=== TEST 13: unblocked: served again
--- redis_setup eval
sub { redis("DEL", "mdm:block:{$::MAC}") }
--- request eval
[ ::token(), ::idle() ]
--- more_headers eval
[ "Content-Type: $t::MDM::CheckinType", $::REPORT_CT ]
--- signed_by: late
--- error_code eval
[ 200, 200 ]
--- no_error_log
[error]



=== TEST 14: end to end through the admin API: POST /v1/enrollments/ID/block makes the device's next check-in and connect 403; unblock serves it again
--- request eval
[ "POST /v1/enrollments/$::MAC/block", ::token(), ::idle(),
  "POST /v1/enrollments/$::MAC/unblock", ::token(), ::idle() ]
--- more_headers eval
[ $::API_AUTH, "Content-Type: $t::MDM::CheckinType", $::REPORT_CT,
  $::API_AUTH, "Content-Type: $t::MDM::CheckinType", $::REPORT_CT ]
--- signed_by: late
--- error_code eval
[ 200, 403, 403, 200, 200, 200 ]
--- redis_check eval
[ [ "EXISTS mdm:block:{$::MAC}", "0" ] ]
