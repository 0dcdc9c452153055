# The whole chain with nothing but our own components: the enrollment
# profile (mdm_enroll) -> its one-time challenge and SCEP URL -> a PKCSReq
# made the way Apple devices make it (t/scepclient.c, of the SCEP CA's
# tests) to the SCEP CA inside nginx (mdm_scep) -> the issued identity signs
# Authenticate and TokenUpdate -> a command enqueued through the API ->
# delivered on Idle -> Acknowledged.  The challenge works once.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMEnroll;

use MIME::Base64 qw(encode_base64);

no_shuffle();

our $Dir = pki_dir() . '/chain';
our $TOPIC = 'com.apple.mgmt.External.0c4e1bd2-6a5f-4c63-9a1d-3f2e8b7c9d10';
our $UDID = 'CHAIN-0001';
our $KEY = 'chain-k3y';

{
    mkdir $Dir;
    t::MDM::_run('gcc', '-O1', '-o', "$Dir/scepclient", 't/scepclient.c',
                 '-lcrypto');
    t::MDM::_run('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                 '-keyout', "$Dir/ca.key", '-out', "$Dir/ca.pem",
                 '-days', '3650', '-subj', '/O=ngx_mdm tests/CN=Chain CA',
                 '-addext', 'basicConstraints=critical,CA:TRUE',
                 '-addext', 'keyUsage=critical,keyCertSign,cRLSign,'
                            . 'digitalSignature,keyEncipherment');
    $ENV{TEST_NGINX_CHAIN} = $Dir;
    t::MDM::_spew("$Dir/challenge", "shared s3cret\n");
}

# one request, its parsed answer
sub send1 {
    my ($method, $path, $body, $headers) = @_;
    my $r = concurrent_requests(Test::Nginx::Socket::server_port(),
                                [ http_request($method, $path, $body,
                                               $headers) ]);
    return $r->[0];
}

# a device request signed by the SCEP-issued identity
sub device {
    my ($path, $type, $body, $dir) = @_;
    $body =~ s/^\s+|\s+\z//g;
    my $sig = mdm_signature($body, { cert => "$dir/cert.pem",
                                     key => "$dir/key.pem" });
    return send1(PUT => $path, $body,
                 [ 'Content-Type' => $type, 'Mdm-Signature' => $sig ]);
}

# PKCSReq with the profile's subject CN and challenge; the CertRep, parsed
sub scep {
    my ($name, $url, $cn, $challenge) = @_;
    my $dir = "$Dir/$name";
    mkdir $dir;
    t::MDM::_run("$Dir/scepclient", 'req', $dir, "$Dir/ca.pem", $cn,
                 $challenge, 'aes128', 'sha256');
    my $path = $url =~ m{^https?://[^/]+(/.*)$} ? $1 : die "URL $url";
    my $r = send1(POST => "$path?operation=PKIOperation",
                  t::MDM::_slurp("$dir/req.der"),
                  [ 'Content-Type' => 'application/x-pki-message' ]);
    t::MDM::_spew("$dir/rep.der", $r->{body} // '');
    my ($st, $out) = t::MDM::run_cmd("$Dir/scepclient", 'rep', $dir,
                                     "$Dir/ca.pem", "$dir/rep.der",
                                     "$Dir/ca.pem");
    my %rep = map { /^([^=]+)=(.*)$/ ? ($1, $2) : () } split /\n/, $out // '';
    return ($dir, \%rep);
}

sub chain {
    my ($block) = @_;
    my $n = $block->name;
    my ($is, $ok) = (\&Test::More::is, \&Test::More::ok);

    # 1. the profile
    my $r = send1(GET => '/enroll');
    $is->($r->{status}, 200, "$n - the profile") or return;
    my $p = parse_plist($r->{body});
    my $scep = profile_payload($p, 'com.apple.security.scep')->{PayloadContent};
    my $mdm = profile_payload($p, 'com.apple.mdm');
    my ($cn) = map { $_->[0][1] } grep { $_->[0][0] eq 'CN' } @{ $scep->{Subject} };
    $is->($mdm->{Topic}, $::TOPIC, "$n - the push certificate's topic");
    $ok->(defined redis('GET', "mdm:scep:challenge:$scep->{Challenge}"),
          "$n - its challenge is waiting in Redis");

    # 2. SCEP with the profile's challenge and subject
    my ($dir, $rep) = scep('dev', $scep->{URL}, $cn, $scep->{Challenge});
    $is->($rep->{pkiStatus}, '0', "$n - SCEP: SUCCESS") or return;
    $ok->(!defined redis('GET', "mdm:scep:challenge:$scep->{Challenge}"),
          "$n - the challenge is used up");
    my $subject = t::MDM::_run('openssl', 'x509', '-in', "$dir/cert.pem",
                               '-noout', '-subject', '-nameopt', 'RFC2253');
    Test::More::like($subject, qr/CN=\Q$cn\E/, "$n - the certificate has the profile's CN");

    # the same challenge again: refused
    my (undef, $again) = scep('again', $scep->{URL}, "$cn again", $scep->{Challenge});
    $is->($again->{pkiStatus}, '2', "$n - the challenge works once (FAILURE)");

    # 3. Authenticate and TokenUpdate with the issued identity
    my $ct = 'application/x-apple-aspen-mdm-checkin';
    my $a = plist_set(vector('nanomdm/mdm/testdata/Authenticate.2.plist'),
                      UDID => $::UDID, Topic => $::TOPIC);
    $is->(device('/mdm/checkin', $ct, $a, $dir)->{status}, 200, "$n - Authenticate");
    my $t = plist_set(vector('nanomdm/mdm/testdata/TokenUpdate.2.plist'),
                      UDID => $::UDID, Topic => $::TOPIC);
    $is->(device('/mdm/checkin', $ct, $t, $dir)->{status}, 200, "$n - TokenUpdate");
    $is->(redis('HGET', "mdm:enr:{$::UDID}", 'enabled'), '1', "$n - enabled");

    # 4. a command through the API, delivered on Idle, acknowledged
    my $cmd = qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n}
            . "<key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict>\n"
            . "<key>CommandUUID</key><string>CHAIN-CMD-1</string>\n</dict>\n</plist>\n";
    $r = send1(PUT => "/v1/enqueue/$::UDID", $cmd,
               [ Authorization => 'Basic ' . encode_base64("nanomdm:$::KEY", '') ]);
    $is->($r->{status}, 200, "$n - enqueue");

    my $report = sub {
        my ($status, $uuid) = @_;
        return qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n}
             . ($uuid ? "<key>CommandUUID</key><string>$uuid</string>\n" : '')
             . "<key>Status</key><string>$status</string>\n"
             . "<key>UDID</key><string>$::UDID</string>\n</dict>\n</plist>\n";
    };
    my $at = 'application/x-apple-aspen-mdm';
    $r = device('/mdm/connect', $at, $report->('Idle'), $dir);
    $is->($r->{status}, 200, "$n - Idle");
    Test::More::like($r->{body} // '', qr{<string>CHAIN-CMD-1</string>},
                     "$n - the command is delivered");
    $r = device('/mdm/connect', $at, $report->('Acknowledged', 'CHAIN-CMD-1'), $dir);
    $is->($r->{status}, 200, "$n - Acknowledged");
    $is->(redis('HGET', "mdm:r:{$::UDID}:CHAIN-CMD-1", 'status'), 'Acknowledged',
          "$n - the result is recorded");
}

# One static challenge for the profile and the CA (mdm_scep_challenge_file
# in server{}), one TTL for one-time challenges (mdm_scep_challenge_ttl),
# and a location that turns the static one off for its profiles.
sub shared {
    my ($block, $body) = @_;
    my $n = $block->name;
    my ($is, $ok) = (\&Test::More::is, \&Test::More::ok);

    my $c = profile_payload(parse_plist($body), 'com.apple.security.scep')
            ->{PayloadContent};
    $is->($c->{Challenge}, 'shared s3cret',
          "$n - the profile embeds the static challenge of mdm_scep_challenge_file");
    $is->(scalar @{ redis('KEYS', 'mdm:scep:challenge:*') }, 0,
          "$n - no one-time challenge stored");
    for my $i (1, 2) {
        my (undef, $rep) = scep("static$i", $c->{URL}, "static $i", $c->{Challenge});
        $is->($rep->{pkiStatus}, '0', "$n - the CA takes it (request $i): SUCCESS");
    }

    my $r = send1(GET => '/enroll/onetime');
    $is->($r->{status}, 200, "$n - a location with mdm_scep_challenge \"\"") or return;
    $c = profile_payload(parse_plist($r->{body}), 'com.apple.security.scep')
         ->{PayloadContent};
    Test::More::like($c->{Challenge}, qr/^[A-Za-z0-9_-]{43}\z/,
                     "$n - gets a one-time challenge");
    my $ttl = redis('TTL', "mdm:scep:challenge:$c->{Challenge}");
    $ok->($ttl > 290 && $ttl <= 300,
          "$n - stored for mdm_scep_challenge_ttl 5m ($ttl)");
    my (undef, $rep) = scep('onetime', $c->{URL}, 'onetime', $c->{Challenge});
    $is->($rep->{pkiStatus}, '0', "$n - the CA takes the one-time one too");
    (undef, $rep) = scep('wrong', $c->{URL}, 'wrong', 'shared s3cre');
    $is->($rep->{pkiStatus}, '2', "$n - a wrong challenge: FAILURE");
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(chain shared);
}

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        mdm_identity_ca $TEST_NGINX_CHAIN/ca.pem;
        location = /enroll {
            mdm_enroll;
            mdm_enroll_ca_cert $TEST_NGINX_CHAIN/ca.pem;
        }
        location = /scep {
            mdm_scep;
            mdm_scep_ca $TEST_NGINX_CHAIN/ca.pem $TEST_NGINX_CHAIN/ca.key;
        }
        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }
        location /v1/ { mdm_api; mdm_api_key "chain-k3y"; }
    },
);

run_tests();

__DATA__

=== TEST 1: profile -> SCEP -> Authenticate -> TokenUpdate -> command -> Acknowledged
--- redis_setup eval
[ 'FLUSHALL', [ 'SADD', 'mdm:topics', $::TOPIC ],
  [ 'HSET', "mdm:pushcert:$::TOPIC", 'cert', 'PEM', 'key', 'PEM',
    'updated_at', '1700000000000' ] ]
--- request
GET /enroll
--- error_code: 200
--- after_each eval
\&chain
--- no_error_log
[alert]
[crit]



=== TEST 2: one static challenge for profile and CA (mdm_scep_challenge_file in server{}), one TTL (mdm_scep_challenge_ttl), "" turns it off
--- config
mdm_identity_ca $TEST_NGINX_CHAIN/ca.pem;
mdm_scep_challenge_file $TEST_NGINX_CHAIN/challenge;
mdm_scep_challenge_ttl 5m;
location = /enroll { mdm_enroll; }
location = /enroll/onetime { mdm_enroll; mdm_scep_challenge ""; }
location = /scep {
    mdm_scep;
    mdm_scep_ca $TEST_NGINX_CHAIN/ca.pem $TEST_NGINX_CHAIN/ca.key;
}
--- redis_setup eval
[ 'FLUSHALL', [ 'SADD', 'mdm:topics', $::TOPIC ],
  [ 'HSET', "mdm:pushcert:$::TOPIC", 'cert', 'PEM', 'key', 'PEM',
    'updated_at', '1700000000000' ] ]
--- request
GET /enroll
--- error_code: 200
--- after_each eval
\&shared
--- no_error_log
[alert]
[crit]
