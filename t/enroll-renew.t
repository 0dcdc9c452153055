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
our $CT = 'application/x-apple-aspen-mdm-checkin';
our $AT = 'application/x-apple-aspen-mdm';
our $CMD;            # the renewal's CommandUUID, from TEST 3
our $OLD;            # the identity of the first enrollment (a directory)
our $PROFILE;        # the renewal profile the device got (TEST 5)

# one CA: the SCEP CA that issues identities and the mdm_identity_ca
our $Dir = scep_setup(pki_dir() . '/renew');
$ENV{TEST_NGINX_RENEW} = $Dir;
{
    # the profile signer (mdm_enroll_sign): issued by the test intermediate
    my $s = device_cert('profile-signer');
    $ENV{TEST_NGINX_SIGNER} = $s->{chain};
    $ENV{TEST_NGINX_SIGNER_KEY} = $s->{key};
}

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

sub checkin_msg {
    my ($file) = @_;
    return plist_set(vector($file), UDID => $::DEV, Topic => $::TOPIC);
}

sub scep_payload {
    my ($p) = @_;
    my $c = (profile_payload($p, 'com.apple.security.scep') || {})
            ->{PayloadContent} || {};
    my ($cn) = map { $_->[0][1] } grep { $_->[0][0] eq 'CN' }
               @{ $c->{Subject} || [] };
    return ($c, $cn);
}

# TEST 1: profile -> SCEP -> Authenticate -> TokenUpdate, our parts only
sub enroll {
    my ($block, $body) = @_;
    my $n = $block->name;
    my ($is, $ok) = (\&Test::More::is, \&Test::More::ok);

    my ($c, $cn) = scep_payload(parse_plist($body));
    my ($dir, $rep) = scep_enroll($::Dir, 'old', $c->{URL}, $cn,
                                  $c->{Challenge});
    $is->($rep->{pkiStatus}, '0', "$n - SCEP with the profile's challenge: SUCCESS")
        or return;
    $::OLD = $dir;
    $is->(device_send('/mdm/checkin', $::CT, checkin_msg($::AUTHN), $dir)
          ->{status}, 200, "$n - Authenticate with the SCEP identity");
    $is->(device_send('/mdm/checkin', $::CT, checkin_msg($::TOKEN), $dir)
          ->{status}, 200, "$n - TokenUpdate");
    $is->(redis('HGET', "mdm:enr:{$::DEV}", 'enabled'), '1', "$n - enabled");
    my %b = @{ redis(@{ cert_bindings($::DEV) }) };
    $is->(join(',', keys %b), cert_file_sha256("$dir/cert.pem"),
          "$n - the issued certificate is bound");
}

# TEST 5: the device connects with its identity and gets the InstallProfile
sub take_profile {
    my ($block) = @_;
    my $n = $block->name;
    my $r = device_send('/mdm/connect', $::AT, report($::DEV, 'Idle'), $::OLD);
    Test::More::is($r->{status}, 200, "$n - Idle with the old identity") or return;
    my $cmd = parse_plist($r->{body});
    Test::More::is($cmd->{CommandUUID}, $::CMD, "$n - the renewal command comes first");
    Test::More::is($cmd->{Command}{RequestType}, 'InstallProfile', "$n - InstallProfile");
    my $payload = $cmd->{Command}{Payload};
    Test::More::is(ref $payload, 'PData', "$n - Payload is data") or return;
    $::PROFILE = parse_plist($$payload);
    my $ch = check_profile("$n - renewal profile", $::PROFILE, topic => $::TOPIC,
        name => 'MDM enrollment', org => 'Example',
        server_url => 'https://mdm.example.com/mdm/connect',
        checkin_url => 'https://mdm.example.com/mdm/checkin',
        scep_url => 'https://mdm.example.com/scep');
    my $ttl = redis('TTL', "mdm:scep:challenge:$ch");
    Test::More::ok($ttl > 7 * 86400 - 10 && $ttl <= 7 * 86400,
                   "$n - the challenge lives as long as the command ($ttl)");
    Test::More::is(device_send('/mdm/connect', $::AT,
                               report($::DEV, 'Acknowledged', $::CMD), $::OLD)
                   ->{status}, 200, "$n - Acknowledged");
}

# TEST 6: the renewal profile's own challenge gets the new identity from
# mdm_scep, and the device's next Authenticate binds it
sub renew {
    my ($block) = @_;
    my $n = $block->name;
    my ($is, $ok) = (\&Test::More::is, \&Test::More::ok);

    my ($c, $cn) = scep_payload($::PROFILE || {});
    my ($dir, $rep) = scep_enroll($::Dir, 'new', $c->{URL} // 'http://x/scep',
                                  $cn // 'none', $c->{Challenge} // 'none');
    $is->($rep->{pkiStatus}, '0',
          "$n - SCEP with the renewal profile's challenge: SUCCESS") or return;
    $ok->(!defined redis('GET', "mdm:scep:challenge:$c->{Challenge}"),
          "$n - the renewal challenge is used up");
    Test::More::like(t::MDM::_run('openssl', 'x509', '-in', "$dir/cert.pem",
                                  '-noout', '-subject', '-nameopt', 'RFC2253'),
                     qr/CN=\Q$cn\E/, "$n - the new certificate has the renewal profile's CN");
    my (undef, $again) = scep_enroll($::Dir, 'again', $c->{URL}, "$cn again",
                                     $c->{Challenge});
    $is->($again->{pkiStatus}, '2', "$n - the renewal challenge works once (FAILURE)");
    $is->($again->{failInfo}, '2', "$n - failInfo badRequest");

    my ($old, $new) = (cert_file_sha256("$::OLD/cert.pem"),
                       cert_file_sha256("$dir/cert.pem"));
    $ok->($old ne $new, "$n - a new certificate");

    # a certificate from an ordinary one-time challenge is no renewal: under
    # mdm_reenroll bound it cannot take the enrollment over
    my $plain = json_of(send1(POST => '/v1/challenge', undef,
                              [ Authorization => 'Basic '
                                . encode_base64("nanomdm:$::KEY", '') ])->{body})->{challenge};
    my ($odir, $orep) = scep_enroll($::Dir, 'other', $c->{URL}, "$cn other", $plain // 'none');
    $is->($orep->{pkiStatus}, '0', "$n - a certificate from an ordinary challenge");
    $is->(device_send('/mdm/checkin', $::CT, checkin_msg($::AUTHN), $odir)->{status}, 403,
          "$n - it cannot take the enrollment over (mdm_reenroll bound)");

    $is->(device_send('/mdm/checkin', $::CT, checkin_msg($::AUTHN), $dir)
          ->{status}, 200, "$n - Authenticate with the new identity");
    my %b = @{ redis(@{ cert_bindings($::DEV) }) };
    $ok->($b{$new}, "$n - the new certificate is bound");
    # the renewal rule (even under mdm_reenroll bound): the old one stays
    # bound until it expires, and the change is a Takeover event
    $ok->($b{$old}, "$n - the old certificate stays bound until its notAfter");
    my $ev = redis('XREVRANGE', 'mdm:events', '+', '-', 'COUNT', 1);
    my %f = @{ $ev->[0][1] || [] };
    $is->($f{type}, 'Takeover', "$n - a Takeover event");
    $is->($f{new_cert_hash}, $new, "$n - naming the new certificate");
    $is->($f{old_cert_hashes}, $old, "$n - and the old one");

    $is->(device_send('/mdm/checkin', $::CT, checkin_msg($::TOKEN), $dir)
          ->{status}, 200, "$n - TokenUpdate with the new identity");
    $is->(redis('HGET', "mdm:enr:{$::DEV}", 'enabled'), '1', "$n - enabled again");
    $is->(device_send('/mdm/connect', $::AT, report($::DEV, 'Idle'), $dir)
          ->{status}, 200, "$n - Idle with the new identity");
    $is->(device_send('/mdm/connect', $::AT, report($::DEV, 'Idle'), $::OLD)
          ->{status}, 200, "$n - Idle with the old identity: still accepted");
    my $e = json_of(send1(GET => "/v1/enrollments/$::DEV", undef,
                          [ Authorization => 'Basic '
                            . encode_base64("nanomdm:$::KEY", '') ])->{body});
    $is->($e->{cert_hash}, $new, "$n - the API shows the new certificate");
    $ok->(($e->{cert_not_after} // 0) > time + 360 * 86400,
          "$n - and its notAfter, a year ahead");
}

# the renewal command a signing API location queued: its profile verifies
# with openssl cms -verify against the test CA, and is a whole profile
sub signed_renewal {
    my ($name, $body) = @_;
    my $uuid = json_of($body)->{status}{$::DEV}{command_uuid} // '';
    my $cmd = parse_plist(redis('HGET', "mdm:cmd:$uuid", 'plist') // '<plist/>');
    my $payload = $cmd->{Command}{Payload};
    Test::More::is(ref $payload, 'PData', "$name - Payload is data") or return;
    my $xml = cms_verify($$payload, pki_dir() . '/ca.pem');
    Test::More::ok(defined $xml, "$name - openssl cms -verify: signed by mdm_enroll_sign")
        or return;
    my $ch = check_profile("$name - signed renewal profile", parse_plist($xml),
        topic => $::TOPIC, name => 'MDM enrollment', org => 'Example',
        server_url => 'https://mdm.example.com/mdm/connect',
        checkin_url => 'https://mdm.example.com/mdm/checkin',
        scep_url => 'https://mdm.example.com/scep');
    Test::More::ok(defined redis('GET', "mdm:scep:challenge:$ch"),
                   "$name - its one-time challenge is stored");
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(report json_of enroll take_profile renew signed_renewal);
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
        mdm_identity_ca $TEST_NGINX_RENEW/ca.pem;
        location = /enroll { mdm_enroll; }
        location = /scep {
            mdm_scep;
            mdm_scep_ca $TEST_NGINX_RENEW/ca.pem $TEST_NGINX_RENEW/ca.key;
        }
        # the strictest policy: only a renewal may change the certificate
        location = /mdm/checkin { mdm_checkin; mdm_reenroll bound; }
        location = /mdm/connect { mdm_connect; }
        location /v1/ {
            mdm_api;
            mdm_api_key "renew-k3y";
            # renewal profiles never carry a static challenge
            mdm_scep_challenge "static-not-for-renewals";
        }
        location /signed/ {
            mdm_api;
            mdm_api_key "renew-k3y";
            mdm_enroll_sign $TEST_NGINX_SIGNER $TEST_NGINX_SIGNER_KEY;
        }
        location /signed-inline/ {
            mdm_api;
            mdm_api_key "renew-k3y";
            mdm_enroll_sign $TEST_NGINX_SIGNER $TEST_NGINX_SIGNER_KEY;
            mdm_enroll_thread_pool off;
        }
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

=== TEST 1: the device enrolls with our parts only: profile -> SCEP -> Authenticate -> TokenUpdate
--- redis_setup eval
[ 'FLUSHALL', [ 'SADD', 'mdm:topics', $::TOPIC ],
  [ 'HSET', "mdm:pushcert:$::TOPIC", 'cert', 'PEM', 'key', 'PEM',
    'updated_at', '1700000000000' ] ]
--- request
GET /enroll
--- error_code: 200
--- after_each eval
\&enroll



=== TEST 2: GET /v1/enrollments?cert_expires_before=: only devices whose certificate runs out before
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



=== TEST 3: renew with no push pending: one InstallProfile, queued and pushed once; unknown ids reported
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



=== TEST 4: a second renew does not push twice while a push is pending (C1)
--- request
POST /v1/renew/RENEW-DEV-0001
--- error_code: 200
--- redis_check eval
[ [ "LLEN mdm:push", 1 ],
  [ "LLEN mdm:q:{RENEW-DEV-0001}", 2 ] ]



=== TEST 5: the device connects and gets the InstallProfile: a valid profile, same URLs and topic, its challenge in Redis
--- request
GET /v1/enrollments/RENEW-DEV-0001
--- error_code: 200
--- after_each eval
\&take_profile



=== TEST 6: SCEP with the renewal profile's one-time challenge; the next Authenticate binds the new certificate; the old one stays accepted until it expires
--- request
GET /v1/enrollments/RENEW-DEV-0001
--- error_code: 200
--- after_each eval
\&renew
--- no_error_log
[alert]
[crit]



=== TEST 7: with mdm_enroll_sign the renewal profiles are signed (thread pool, and inline with mdm_enroll_thread_pool off)
--- request eval
[ "POST /signed/v1/renew/RENEW-DEV-0001",
  "POST /signed-inline/v1/renew/RENEW-DEV-0001" ]
--- error_code eval
[ 200, 200 ]
--- after_each eval
[ sub { ::signed_renewal('thread pool', $_[1]) },
  sub { ::signed_renewal('inline', $_[1]) } ]
--- no_error_log
[error]



=== TEST 8: refusals: method, user channel, empty list, over 100 devices, the URLs unset
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



=== TEST 9: Redis down: 503 JSON
--- redis_setup eval
sub { redis_stop() }
--- request
POST /v1/renew/RENEW-DEV-0001
--- error_code: 503
--- response_body_like: redis is not connected
