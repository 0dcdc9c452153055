# Renewal of device identities: GET /v1/enrollments?cert_expires_before=
# finds the devices, POST /v1/renew/ID[,ID...] queues an InstallProfile of
# a freshly generated enrollment profile (same URLs and topic, a new
# one-time challenge) and pushes; the device gets it on its next connect,
# and its next Authenticate with the new certificate binds it.
#
# The blocks share one Redis and run in order (one device's story).

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMEnroll;

use JSON::PP ();
use MIME::Base64 qw(encode_base64);

no_shuffle();

our $KEY = 'renew-k3y';
our $AUTH = 'Authorization: Basic ' . encode_base64("nanomdm:$KEY", '');
our $DEV = 'RENEW-DEV-0001';
our $TOPIC = 'com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9';
our $AUTHN = "nanomdm/mdm/testdata/Authenticate.2.plist";
our $TOKEN = "nanomdm/mdm/testdata/TokenUpdate.2.plist";
our $CMD;            # the renewal's CommandUUID, from TEST 4

sub report {
    my ($udid, $status, $uuid) = @_;
    my $u = defined $uuid
          ? "\t<key>CommandUUID</key>\n\t<string>$uuid</string>\n" : '';
    return qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n$u}
         . "\t<key>Status</key>\n\t<string>$status</string>\n"
         . "\t<key>UDID</key>\n\t<string>$udid</string>\n</dict>\n</plist>\n";
}

sub json_of {
    my ($body) = @_;
    return eval { JSON::PP->new->decode($body) } // {};
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(report json_of);
}

mdm_defaults(
    http_config => q{
        mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
        mdm_enroll_server_url https://mdm.example.com/mdm/connect;
        mdm_enroll_checkin_url https://mdm.example.com/mdm/checkin;
        mdm_enroll_scep_url https://mdm.example.com/scep;
        mdm_enroll_organization "Example";
        mdm_result_ttl 7d;
    },
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }
        location /v1/ { mdm_api; mdm_api_key "renew-k3y"; }
        location /nourl/ {
            mdm_api;
            mdm_api_key "renew-k3y";
            mdm_enroll_scep_url "";
        }
    },
    more_headers => $AUTH,
);

run_tests();

__DATA__

=== TEST 1: the device enrolls (Authenticate, signed)
--- redis_setup
FLUSHALL
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- request eval
checkin_request($::AUTHN, UDID => $::DEV)
--- signed_by: renew-old
--- error_code: 200



=== TEST 2: TokenUpdate
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- request eval
checkin_request($::TOKEN, UDID => $::DEV)
--- signed_by: renew-old
--- error_code: 200



=== TEST 3: GET /v1/enrollments?cert_expires_before=: only devices whose certificate runs out before
--- request eval
[ "GET /v1/enrollments?cert_expires_before=" . (time + 400 * 86400),
  "GET /v1/enrollments?cert_expires_before=" . (time + 300 * 86400),
  "GET /v1/enrollments",
  "GET /v1/enrollments?cert_expires_before=soon" ]
--- error_code eval
[ 200, 200, 200, 400 ]
--- after_each eval
[ sub { my @e = @{ json_of($_[1])->{enrollments} || [] };
        Test::More::is(CORE::join(',', map { $_->{id} } @e), $::DEV,
                       "expiring within 400 days: the device");
        Test::More::ok($e[0]{cert_not_after} < time + 400 * 86400,
                       "its cert_not_after is shown"); },
  sub { Test::More::is(scalar @{ json_of($_[1])->{enrollments} || [1] }, 0,
                       "expiring within 300 days: none") },
  sub { Test::More::is(scalar @{ json_of($_[1])->{enrollments} || [] }, 1,
                       "no filter: the device") },
  sub { Test::More::like($_[1], qr/cert_expires_before is a time in seconds/,
                         "a filter that is no number: 400") } ]



=== TEST 4: renew with no push pending: one InstallProfile, queued and pushed once; unknown ids reported
--- redis_setup
DEL mdm:push mdm:push:pending
--- request
POST /v1/renew/RENEW-DEV-0001,NOBODY,RENEW-DEV-0001
--- error_code: 207
--- after_each eval
sub {
    my $j = json_of($_[1]);
    $::CMD = $j->{status}{$::DEV}{command_uuid} // '';
    Test::More::like($::CMD, qr/^[0-9A-F-]{36}\z/, "a CommandUUID for the device");
    Test::More::is($j->{status}{$::DEV}{push_result}, 'queued', "pushed");
    Test::More::is($j->{status}{NOBODY}{renew_error}, 'unknown enrollment',
                   "the unknown id is named");
    Test::More::is($j->{request_type}, 'InstallProfile', "request_type");
    Test::More::is_deeply(redis('LRANGE', "mdm:q:{$::DEV}", 0, -1), [ $::CMD ],
                          "one command queued (the id named twice counts once)");
    Test::More::is_deeply(redis('LRANGE', 'mdm:push', 0, -1), [ $::DEV ],
                          "one push (C1)");
    Test::More::is_deeply(redis('SMEMBERS', 'mdm:push:pending'), [ $::DEV ],
                          "pending push (C1)");
    Test::More::is(redis('HGET', "mdm:cmd:$::CMD", 'request_type'),
                   'InstallProfile', "the command is stored");
    my $ttl = redis('TTL', "mdm:cmd:$::CMD");
    Test::More::ok($ttl > 7 * 86400 - 10 && $ttl <= 7 * 86400,
                   "the command is kept mdm_result_ttl ($ttl)");
}



=== TEST 5: a second renew does not push twice while a push is pending (C1)
--- request
POST /v1/renew/RENEW-DEV-0001
--- error_code: 200
--- redis_check eval
[ [ "LLEN mdm:push", 1 ],
  [ "LLEN mdm:q:{RENEW-DEV-0001}", 2 ] ]



=== TEST 6: the device connects and gets the InstallProfile: a valid profile, same URLs and topic, its challenge in Redis
--- more_headers
Content-Type: application/x-apple-aspen-mdm
--- request eval
"PUT /mdm/connect\n" . report($::DEV, "Idle")
--- signed_by: renew-old
--- error_code: 200
--- after_each eval
sub {
    my ($block, $body) = @_;
    my $cmd = ::parse_plist($body);
    Test::More::is($cmd->{CommandUUID}, $::CMD, "the renewal command comes first");
    Test::More::is($cmd->{Command}{RequestType}, 'InstallProfile', "InstallProfile");
    my $payload = $cmd->{Command}{Payload};
    Test::More::is(ref $payload, 'PData', "Payload is data") or return;
    my $p = ::parse_plist($$payload);
    my $ch = ::check_profile("renewal profile", $p, topic => $::TOPIC,
        name => 'MDM enrollment', org => 'Example',
        server_url => 'https://mdm.example.com/mdm/connect',
        checkin_url => 'https://mdm.example.com/mdm/checkin',
        scep_url => 'https://mdm.example.com/scep');
    my $ttl = redis('TTL', "mdm:scep:challenge:$ch");
    Test::More::ok($ttl > 7 * 86400 - 10 && $ttl <= 7 * 86400,
                   "the challenge lives as long as the command ($ttl)");
}



=== TEST 7: with its new certificate (from SCEP) the device authenticates again: the new certificate is bound
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- request eval
checkin_request($::AUTHN, UDID => $::DEV)
--- signed_by: renew-new
--- error_code: 200
--- after_each eval
sub {
    my %b = @{ redis(@{ cert_bindings($::DEV) }) };
    Test::More::ok($b{ cert_sha256('renew-new') },
                   "the new certificate is bound to the device");
}



=== TEST 8: and checks in with it
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- request eval
checkin_request($::TOKEN, UDID => $::DEV)
--- signed_by: renew-new
--- error_code: 200
--- no_error_log
[error]



=== TEST 9: refusals: method, user channel, empty list, over 100 devices, the URLs unset
--- request eval
[ "GET /v1/renew/RENEW-DEV-0001",
  "POST /v1/renew/RENEW-DEV-0001:USER",
  "POST /v1/renew/A,",
  "POST /v1/renew/" . CORE::join(',', map { "D$_" } 1 .. 101),
  "POST /nourl/v1/renew/RENEW-DEV-0001",
  "POST /v1/renew/NOBODY" ]
--- error_code eval
[ 405, 400, 400, 400, 500, 400 ]
--- response_body_like eval
[ qr/renew takes POST/, qr/no user channels/, qr/separated by commas/,
  qr/at most 100/, qr/needs mdm_enroll_server_url/, qr/unknown enrollment/ ]



=== TEST 10: Redis down: 503 JSON
--- redis_setup eval
sub { redis_stop() }
--- request
POST /v1/renew/RENEW-DEV-0001
--- error_code: 503
--- response_body_like: redis is not connected
