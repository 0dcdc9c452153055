# mdm_enroll: the enrollment profile (GET), signed and unsigned, with and
# without a push certificate; the ADE enrollment URL (POST of a signed
# MachineInfo, and GET with x-apple-aspen-deviceinfo).  Profiles are
# parsed completely and checked key by key (t/MDMEnroll.pm).

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMEnroll;

use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use Time::HiRes ();

no_shuffle();

our $TOPIC = 'com.apple.mgmt.External.6f1a3b1e-4c0b-4a4b-9f5e-1d2c3b4a5f60';
our $SERIAL = 'C02XK1ABJGH5';
our $UDID = '00008020-0001713C1E90003A';

{
    # the profile signer: issued by the test intermediate, chain in the file
    my $s = device_cert('profile-signer');
    $ENV{TEST_NGINX_SIGNER} = $s->{chain};
    $ENV{TEST_NGINX_SIGNER_KEY} = $s->{key};
}

sub pushcert_setup {
    return [ 'FLUSHALL',
             [ 'SADD', 'mdm:topics', $::TOPIC ],
             [ 'HSET', "mdm:pushcert:$::TOPIC", 'cert', 'PEM', 'key', 'PEM',
               'updated_at', '1700000000000' ] ];
}

sub ca_der {
    my $pem = do { local (@ARGV, $/) = (pki_dir() . '/ca.pem'); <> };
    $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END/s;
    return MIME::Base64::decode_base64($1);
}

# what the device sends: MachineInfo signed by its identity (the same bytes
# for the same arguments: a block's sections evaluate it more than once)
our %MI;
sub machineinfo {
    my $k = join "\0", map { $_ // '(undef)' } @_;
    return $MI{$k} //= _machineinfo(@_);
}

sub _machineinfo {
    my ($signer, %over) = @_;
    my %k = (UDID => $::UDID, SERIAL => $::SERIAL, PRODUCT => 'iPhone14,2',
             VERSION => '21A329', LANGUAGE => 'en-US', IMEI => '35 123456 789012 3',
             %over);
    delete $k{$_} for grep { !defined $k{$_} } keys %k;
    my $c = device_cert($signer, $signer =~ /rogue/ ? (issuer => 'rogue') : ());
    return cms_sign(machineinfo_plist(%k), $c->{cert}, $c->{key});
}

# a POST with a binary body: Content-Length keeps the harness from trimming
sub post {
    my ($uri, $body) = @_;
    return ("POST $uri\n$body",
            "Content-Length: " . length($body) . "\n"
            . "Content-Type: application/pkcs7-signature\n");
}

# After the request: the profile parses, has every key, and its one-time
# challenge is in Redis with the TTL.
sub profile_ok {
    my (%w) = @_;
    return sub {
        my ($block, $body) = @_;
        my $name = $block->name;
        my $xml = $body;
        if ($w{signed}) {
            $xml = cms_verify($body, pki_dir() . '/ca.pem');
            Test::More::ok(defined $xml,
                           "$name - openssl cms -verify against the CA");
            $xml //= '';
        } else {
            Test::More::like($body, qr/^<\?xml/, "$name - not signed");
        }
        my $p = eval { parse_plist($xml) };
        Test::More::ok($p, "$name - the profile parses") or return;
        my $ch = check_profile($name, $p, topic => $::TOPIC,
            name => 'MDM enrollment', org => 'localhost',
            server_url => 'http://localhost/mdm/connect',
            checkin_url => 'http://localhost/mdm/checkin',
            scep_url => 'http://localhost/scep', %w);
        if (!defined $w{challenge}) {
            my $ttl = redis('TTL', "mdm:scep:challenge:$ch");
            my $max = $w{ttl} // 3600;
            Test::More::ok($ttl > $max - 10 && $ttl <= $max,
                           "$name - the challenge is in Redis, TTL $ttl");
            Test::More::like(redis('GET', "mdm:scep:challenge:$ch"),
                             qr/^\d{13}\z/, "$name - valued with ms created");
        } else {
            Test::More::is(scalar @{ redis('KEYS', 'mdm:scep:challenge:*') },
                           0, "$name - no one-time challenge stored");
        }
    };
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config',
                      'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;')
        unless defined $block->http_config;
    $block->set_value('config', <<'EOF') unless defined $block->config;
        location = /enroll {
            mdm_enroll;
        }
        location = /enroll/ade {
            mdm_enroll;
            mdm_enroll_device_ca $TEST_NGINX_PKI/identity-ca.pem;
        }
        location = /enroll/custom {
            mdm_enroll;
            mdm_enroll_server_url https://mdm.example.com/mdm;
            mdm_enroll_checkin_url https://mdm.example.com/checkin;
            mdm_enroll_scep_url https://ca.example.com/scep?x=1&y=<2>;
            mdm_enroll_organization "Example & Co";
            mdm_enroll_name "Example MDM";
            mdm_enroll_ca_cert $TEST_NGINX_PKI/ca.pem;
            mdm_scep_challenge_ttl 10m;
        }
        location = /enroll/static {
            mdm_enroll;
            mdm_scep_challenge "static s3cret";
        }
        location = /enroll/signed {
            mdm_enroll;
            mdm_enroll_sign $TEST_NGINX_SIGNER $TEST_NGINX_SIGNER_KEY;
        }
        location = /enroll/signed-inline {
            mdm_enroll;
            mdm_enroll_sign $TEST_NGINX_SIGNER $TEST_NGINX_SIGNER_KEY;
            mdm_enroll_thread_pool off;
        }
        location = /enroll/nodca {
            mdm_enroll;
        }
EOF
});

run_tests();

__DATA__

=== TEST 1: no push certificate: 503 with a JSON error, one log line, no challenge left
--- redis_setup
FLUSHALL
--- request
GET /enroll
--- error_code: 503
--- response_headers
Content-Type: application/json
--- response_body eval
'{"error":"no push certificate: upload the APNs certificate with PUT /v1/pushcert first"}'
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: profile request from enrollment "-" answered 503: no push certificate[^\n]*\n\z/
--- redis_check
KEYS mdm:scep:challenge:* => (empty)



=== TEST 2: a topic only seen from devices (no uploaded certificate) is not enough
--- redis_setup
FLUSHALL
SADD mdm:topics com.apple.mgmt.External.device-said
--- request
GET /enroll
--- error_code: 503
--- response_body_like: no push certificate



=== TEST 3: the profile: every key, defaults from the request, one-time challenge in Redis
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll
--- error_code: 200
--- response_headers
Content-Type: application/x-apple-aspen-config
Content-Disposition: attachment; filename="enroll.mobileconfig"
--- after_each eval
::profile_ok()
--- no_error_log
[error]



=== TEST 4: two profiles have different challenges, CNs and UUIDs
--- redis_setup eval
::pushcert_setup()
--- request eval
["GET /enroll", "GET /enroll"]
--- error_code eval
[200, 200]
--- after_each eval
my @seen;
sub {
    my ($block, $body, $i) = @_;
    my $p = ::parse_plist($body);
    my $c = ::profile_payload($p, 'com.apple.security.scep')->{PayloadContent};
    push @seen, [ $c->{Challenge}, $c->{Subject}[1][0][1], $p->{PayloadUUID} ];
    if ($i == 1) {
        for my $k (0 .. 2) {
            Test::More::isnt($seen[0][$k], $seen[1][$k],
                             $block->name . " - value $k differs");
        }
        Test::More::is(scalar @{ redis('KEYS', 'mdm:scep:challenge:*') }, 2,
                       $block->name . " - two challenges stored");
    }
}



=== TEST 5: the newest uploaded certificate's topic wins
--- redis_setup eval
[ 'FLUSHALL',
  [ 'SADD', 'mdm:topics', 'com.apple.mgmt.External.old', $::TOPIC ],
  [ 'HSET', 'mdm:pushcert:com.apple.mgmt.External.old', 'updated_at', '1600000000000' ],
  [ 'HSET', "mdm:pushcert:$::TOPIC", 'updated_at', '1700000000000' ] ]
--- request
GET /enroll
--- error_code: 200
--- after_each eval
::profile_ok()



=== TEST 6: every directive: URLs, organization, name, root payload, challenge TTL (and XML escaping)
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/custom
--- error_code: 200
--- after_each eval
::profile_ok(server_url => 'https://mdm.example.com/mdm',
           checkin_url => 'https://mdm.example.com/checkin',
           scep_url => 'https://ca.example.com/scep?x=1&y=<2>',
           org => 'Example & Co', name => 'Example MDM',
           root => ::ca_der(), ttl => 600)



=== TEST 7: a static challenge is embedded and no one-time challenge is stored
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/static
--- error_code: 200
--- after_each eval
::profile_ok(challenge => 'static s3cret')



=== TEST 8: mdm_enroll_sign: CMS SignedData, attached, verifies against the CA with openssl cms
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/signed
--- error_code: 200
--- response_headers
Content-Type: application/x-apple-aspen-config
--- after_each eval
::profile_ok(signed => 1)
--- error_log
added to thread pool "default"
--- no_error_log
[error]



=== TEST 9: the signature covers the profile: a flipped byte fails openssl cms -verify
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/signed
--- error_code: 200
--- after_each eval
sub {
    my ($block, $body) = @_;
    my $i = index($body, '<key>Topic</key>');
    Test::More::ok($i > 0, $block->name . " - the profile is inside (attached)");
    substr($body, $i + 5, 1, 'X');
    Test::More::ok(!defined ::cms_verify($body, pki_dir() . '/ca.pem'),
                   $block->name . " - a tampered profile does not verify");
}



=== TEST 10: mdm_enroll_thread_pool off: signed in the event loop, the same profile
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/signed-inline
--- error_code: 200
--- after_each eval
::profile_ok(signed => 1)
--- no_error_log
[error]
added to thread pool



=== TEST 11: 50 signed profiles at once (thread pool): all verify, 50 challenges
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/signed
--- error_code: 200
--- after_each eval
sub {
    my ($block) = @_;
    my @r = @{ concurrent_requests(Test::Nginx::Socket::server_port(),
                   [ (http_request('GET', '/enroll/signed')) x 50 ]) };
    my $ok = grep { $_->{status} == 200
                    && defined ::cms_verify($_->{body}, pki_dir() . '/ca.pem') } @r;
    Test::More::is($ok, 50, $block->name . " - 50 answered 200 and verify");
    Test::More::is(scalar @{ redis('KEYS', 'mdm:scep:challenge:*') }, 51,
                   $block->name . " - one challenge each");
}
--- no_error_log
[error]



=== TEST 12: clients that hang up while their profile is signed: no crash, no leak, the next one served
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/signed
--- error_code: 200
--- after_each eval
sub {
    my ($block) = @_;
    my $port = Test::Nginx::Socket::server_port();
    for my $delay (0, 0.001, 0.002, 0.005, 0.01) {
        my @s;
        for (1 .. 10) {
            my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
                or die "connect: $!";
            print {$c} http_request('GET', '/enroll/signed');
            push @s, $c;
        }
        Time::HiRes::sleep($delay);
        close $_ for @s;
    }
    Time::HiRes::sleep(0.3);
    my $r = concurrent_requests($port, [ http_request('GET', '/enroll/signed') ]);
    Test::More::is($r->[0]{status}, 200, $block->name . " - served after");
}
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 13: HEAD answers the headers only
--- redis_setup eval
::pushcert_setup()
--- request
HEAD /enroll
--- error_code: 200
--- response_headers
Content-Type: application/x-apple-aspen-config



=== TEST 14: other methods: 405 and one log line
--- request
PUT /enroll
x
--- error_code: 405
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*answered 405: method is not GET, HEAD or POST[^\n]*\n\z/



=== TEST 15: Redis down: 503 JSON at once
--- redis_setup eval
sub { redis_stop() }
--- request
GET /enroll
--- error_code: 503
--- response_body eval
'{"error":"redis is not connected"}'
--- grep_error_log eval
qr/\[error\].*answered.*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*answered 503: redis is not connected[^\n]*\n\z/



=== TEST 16: ADE: a signed MachineInfo gets the profile, and the machine info is recorded for 30 days
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', ::machineinfo('ade-device')))[0]
--- more_headers eval
(::post('/enroll/ade', ::machineinfo('ade-device')))[1]
--- error_code: 200
--- response_headers
Content-Type: application/x-apple-aspen-config
--- after_each eval
::profile_ok()
--- redis_check eval
my $k = "mdm:machineinfo:$::SERIAL";
[
  [ "HGET $k serial", $::SERIAL ],
  [ "HGET $k udid", $::UDID ],
  [ "HGET $k product", "iPhone14,2" ],
  [ "HGET $k version", "21A329" ],
  [ "HGET $k language", "en-US" ],
  [ [ 'HGET', $k, 'imei' ], "35 123456 789012 3" ],
  [ "HGET $k meid", undef ],
  [ "HGET $k updated_at", qr/^\d{13}\z/ ],
  [ "TTL $k", sub { $_[0] > 30 * 86400 - 10 && $_[0] <= 30 * 86400 } ],
]
--- no_error_log
[error]



=== TEST 17: ADE through a web view: GET with x-apple-aspen-deviceinfo
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/ade
--- more_headers eval
"x-apple-aspen-deviceinfo: " . MIME::Base64::encode_base64(::machineinfo('ade-device', SERIAL => 'WEBVIEW1'), '') . "\n"
--- error_code: 200
--- after_each eval
::profile_ok()
--- redis_check
HGET mdm:machineinfo:WEBVIEW1 udid => 00008020-0001713C1E90003A



=== TEST 18: ADE: MachineInfo signed by a device of another CA: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', ::machineinfo('rogue-device')))[0]
--- more_headers eval
(::post('/enroll/ade', ::machineinfo('rogue-device')))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: MachineInfo signature does not verify against mdm_enroll_device_ca[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 19: ADE: a MachineInfo altered after signing: 400
--- redis_setup eval
::pushcert_setup()
--- request eval
my $d = ::machineinfo('ade-device');
$d =~ s/\Q$::SERIAL\E/C02XK1ABJGH6/ or die "serial not in the DER";
(::post('/enroll/ade', $d))[0]
--- more_headers eval
my $d = ::machineinfo('ade-device');
(::post('/enroll/ade', $d))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*answered 400: MachineInfo signature does not verify[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)



=== TEST 20: ADE: an unsigned plist: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', ::machineinfo_plist(SERIAL => 'X', UDID => 'Y')))[0]
--- more_headers eval
(::post('/enroll/ade', ::machineinfo_plist(SERIAL => 'X', UDID => 'Y')))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\QMachineInfo is not a CMS SignedData\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 21: ADE: garbage: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', "\x30\x82\xff\xff garbage"))[0]
--- more_headers eval
(::post('/enroll/ade', "\x30\x82\xff\xff garbage"))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\QMachineInfo is not a CMS SignedData\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 22: ADE: an empty body: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(("POST /enroll/ade\n", "Content-Length: 0\n"))[0]
--- more_headers eval
(("POST /enroll/ade\n", "Content-Length: 0\n"))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\Qempty body: no MachineInfo\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 23: ADE: a signed MachineInfo without SERIAL: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', ::machineinfo('ade-device', SERIAL => undef)))[0]
--- more_headers eval
(::post('/enroll/ade', ::machineinfo('ade-device', SERIAL => undef)))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\QMachineInfo lacks SERIAL or UDID\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 24: ADE: a SERIAL that is not a serial: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', ::machineinfo('ade-device', SERIAL => '../../x')))[0]
--- more_headers eval
(::post('/enroll/ade', ::machineinfo('ade-device', SERIAL => '../../x')))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\QMachineInfo SERIAL is not 1-64 letters and digits\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 25: ADE: a signed body that is not a plist: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', ::cms_sign('not a plist', device_cert('ade-device')->{cert}, device_cert('ade-device')->{key})))[0]
--- more_headers eval
(::post('/enroll/ade', ::cms_sign('not a plist', device_cert('ade-device')->{cert}, device_cert('ade-device')->{key})))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\Qbody is not an XML plist dictionary\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 26: ADE: a signed binary plist: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', ::cms_sign('bplist00' . ('x' x 40), device_cert('ade-device')->{cert}, device_cert('ade-device')->{key})))[0]
--- more_headers eval
(::post('/enroll/ade', ::cms_sign('bplist00' . ('x' x 40), device_cert('ade-device')->{cert}, device_cert('ade-device')->{key})))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\Qbody is a binary plist\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 27: ADE: a signed plist nested too deep (the hardened parser): 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/ade', ::cms_sign('<plist><dict><key>a</key>' . ('<array>' x 200) . ('</array>' x 200) . '</dict></plist>', device_cert('ade-device')->{cert}, device_cert('ade-device')->{key})))[0]
--- more_headers eval
(::post('/enroll/ade', ::cms_sign('<plist><dict><key>a</key>' . ('<array>' x 200) . ('</array>' x 200) . '</dict></plist>', device_cert('ade-device')->{cert}, device_cert('ade-device')->{key})))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\Qdeeper\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 28: ADE: a deviceinfo header that is not base64: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(("GET /enroll/ade", "x-apple-aspen-deviceinfo: %%%not base64\n"))[0]
--- more_headers eval
(("GET /enroll/ade", "x-apple-aspen-deviceinfo: %%%not base64\n"))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\Qx-apple-aspen-deviceinfo is not base64\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 29: ADE: a deviceinfo header with garbage: 400, one log line, nothing stored
--- redis_setup eval
::pushcert_setup()
--- request eval
(("GET /enroll/ade", "x-apple-aspen-deviceinfo: " . MIME::Base64::encode_base64('garbage', '') . "\n"))[0]
--- more_headers eval
(("GET /enroll/ade", "x-apple-aspen-deviceinfo: " . MIME::Base64::encode_base64('garbage', '') . "\n"))[1]
--- error_code: 400
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: MachineInfo from enrollment "-" answered 400: [^\n]*\QMachineInfo is not a CMS SignedData\E[^\n]*\n\z/
--- redis_check
KEYS mdm:machineinfo:* => (empty)
KEYS mdm:scep:challenge:* => (empty)



=== TEST 30: a location with mdm_enroll_device_ca serves ADE devices only: a plain GET is 403
--- redis_setup eval
::pushcert_setup()
--- request
GET /enroll/ade
--- error_code: 403
--- response_body_like: ^\{"error":"no MachineInfo: this location \(mdm_enroll_device_ca\) serves ADE devices only \(a POST from Setup Assistant, or a GET with x-apple-aspen-deviceinfo\); people get profiles from another mdm_enroll location"\}$
--- response_headers
Content-Type: application/json
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*answered 403: no MachineInfo: this location \(mdm_enroll_device_ca\) serves ADE devices only[^\n]*\n\z/
--- redis_check
KEYS mdm:scep:challenge:* => (empty)



=== TEST 31: ADE where no mdm_enroll_device_ca is set: 403, not a profile
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll/nodca', ::machineinfo('ade-device')))[0]
--- more_headers eval
(::post('/enroll/nodca', ::machineinfo('ade-device')))[1]
--- error_code: 403
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*answered 403: ADE MachineInfo refused: no mdm_enroll_device_ca here[^\n]*\n\z/



=== TEST 32: mdm_enroll_device_ca off: a startup warning; MachineInfo accepted unverified
--- config
location = /enroll {
    mdm_enroll;
    mdm_enroll_device_ca off;
}
--- redis_setup eval
::pushcert_setup()
--- request eval
(::post('/enroll', ::machineinfo('rogue-device', SERIAL => 'UNVERIFIED1')))[0]
--- more_headers eval
(::post('/enroll', ::machineinfo('rogue-device', SERIAL => 'UNVERIFIED1')))[1]
--- error_code: 200
--- redis_check
HGET mdm:machineinfo:UNVERIFIED1 serial => UNVERIFIED1
--- error_log
mdm_enroll_device_ca off: any client can send MachineInfo for any device serial



=== TEST 33: configuration: mdm_enroll without mdm_redis
--- http_config
--- config
location = /enroll { mdm_enroll; }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_enroll needs "mdm_redis" in http\{\}/



=== TEST 34: configuration: mdm_enroll_sign with a key of another certificate
--- config
location = /enroll {
    mdm_enroll;
    mdm_enroll_sign $TEST_NGINX_SIGNER $TEST_NGINX_PKI/ca.key;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_enroll_sign: ".*" must be a PEM certificate \(then its chain\) and ".*ca\.key" its PEM private key/



=== TEST 35: configuration: mdm_enroll_device_ca that is no certificate
--- config
location = /enroll {
    mdm_enroll;
    mdm_enroll_device_ca $TEST_NGINX_PKI/ca.key;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_enroll_device_ca ".*ca\.key" holds no PEM certificate/



=== TEST 36: configuration: mdm_enroll_ca_cert that cannot be read
--- config
location = /enroll {
    mdm_enroll;
    mdm_enroll_ca_cert /nonexistent/ca.pem;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_enroll_ca_cert "\/nonexistent\/ca\.pem" is not a readable PEM certificate/



=== TEST 37: configuration: a challenge TTL of 0
--- config
location = /enroll {
    mdm_enroll;
    mdm_scep_challenge_ttl 0;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_scep_validity and mdm_scep_challenge_ttl must be more than 0/
