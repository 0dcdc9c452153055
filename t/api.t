# The admin API (mdm_api): NanoMDM's /v1/enqueue, /v1/push and /version,
# plus inspection and dequeue (/v1/enrollments, /v1/queue, /v1/commands).
# HTTP Basic (user "nanomdm", password mdm_api_key), JSON everywhere, even
# for errors.
#
# Blocks share one Redis: the first part enrolls a device through real
# signed check-ins and follows one command from enqueue to the device's
# answer; later parts make enrollments directly in Redis, which is all the
# API looks at. `--- json eval` (defined below) checks a JSON response.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

use B ();
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Scalar::Util qw(blessed);
use Time::HiRes ();

no_shuffle();

# A worker that crashes is replaced, and says so in the log ([alert] ...
# exited on signal N), instead of taking the rest of the block with it.
master_on();

our $KEY = 'k3y-for-the-API+/=';
our $AUTH = 'Authorization: Basic ' . encode_base64("nanomdm:$KEY", '');
our $FILE_KEY = 'key-from-a-file';

{
    # mdm_api_key_file: a trailing newline is not part of the key.
    my $f = pki_dir() . '/api.key';
    open my $fh, '>', $f or die "$f: $!";
    print {$fh} "$FILE_KEY\n";
    close $fh;
    $ENV{TEST_NGINX_API_KEY_FILE} = $f;
    my $empty = pki_dir() . '/empty.key';
    open $fh, '>', $empty or die "$empty: $!";
    print {$fh} "\n";
    close $fh;
    $ENV{TEST_NGINX_EMPTY_KEY_FILE} = $empty;
}

sub basic { return 'Authorization: Basic ' . encode_base64(join(':', @_), '') }

# ---------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------

# A command plist as NanoMDM's tools write it. $uuid undef: no CommandUUID.
# $extra: raw XML added inside the Command dict.
sub cmd_plist {
    my ($rtype, $uuid, $extra) = @_;
    my $u = defined $uuid
          ? "\t<key>CommandUUID</key>\n\t<string>$uuid</string>\n" : '';
    return <<"EOF";
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>Command</key>
\t<dict>
\t\t<key>RequestType</key>
\t\t<string>$rtype</string>
@{[ $extra // '' ]}\t</dict>
$u</dict>
</plist>
EOF
}

# Any XML plist around a raw top-level value.
sub raw_plist {
    my ($inner) = @_;
    return qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n$inner\n</plist>\n};
}

# What the harness sends (and so what the module stores) for a body.
sub sent { my ($b) = @_; $b =~ s/^\s+|\s+\z//g; return $b }

# A device's command report (mdm_connect body).
sub report {
    my ($udid, $status, $uuid) = @_;
    my $u = defined $uuid
          ? "\t<key>CommandUUID</key>\n\t<string>$uuid</string>\n" : '';
    return raw_plist("<dict>\n$u\t<key>Status</key>\n\t<string>$status</string>\n"
                     . "\t<key>UDID</key>\n\t<string>$udid</string>\n</dict>");
}

# HSET for an enrollment made directly in Redis ("DEV" or "DEV:USER").
sub enr {
    my ($id, %f) = @_;
    my ($dev, $user) = split /:/, $id, 2;
    my $key = "mdm:enr:{$dev}" . (defined $user ? ":$user" : '');
    %f = (type => (defined $user ? 'User' : 'Device'), enabled => 1,
          (defined $user ? (parent => $dev) : ()), %f);
    return [ 'HSET', $key, map { ($_, $f{$_}) } sort keys %f ];
}

# What a rejected enqueue must leave alone: the number of command hashes
# and ENQ-1's queue, as "N|uuid,uuid,...".
our $SnapScript = q{
    local n = 0
    for _, k in ipairs(redis.call('KEYS', 'mdm:cmd:*')) do
        if redis.call('TYPE', k).ok == 'hash' then n = n + 1 end
    end
    return n .. '|' .. table.concat(redis.call('LRANGE', 'mdm:q:{ENQ-1}', 0, -1), ',')
};
sub snapshot { return redis('EVAL', $SnapScript, 0) }

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(cmd_plist raw_plist sent report enr api exact absent num all_of basic
               json_diff);
}

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        # one enqueue may name thousands of enrollments in its URL
        large_client_header_buffers 4 64k;
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;

        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }

        location /v1/ { mdm_api; mdm_api_key "k3y-for-the-API+/="; }
        location = /version { mdm_api; mdm_api_key "k3y-for-the-API+/="; }

        # mounted under a prefix
        location /admin/ { mdm_api; mdm_api_key "k3y-for-the-API+/="; }

        location /nokey/ { mdm_api; }
        location /emptykey/ { mdm_api; mdm_api_key ""; }
        location /keyfile/ { mdm_api; mdm_api_key_file $TEST_NGINX_API_KEY_FILE; }
        location /denied/ {
            deny all;
            mdm_api;
            mdm_api_key "k3y-for-the-API+/=";
        }
        location /local/ {
            allow 127.0.0.1;
            deny all;
            mdm_api;
            mdm_api_key "k3y-for-the-API+/=";
        }
    },
    more_headers => $AUTH,
);

# The device enrolled through real check-ins.
our $DEV = 'API-FLOW-0001';
our $AUTHN = "nanomdm/mdm/testdata/Authenticate.2.plist";
our $TOKEN = "nanomdm/mdm/testdata/TokenUpdate.2.plist";
our $UUID_RE = qr/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/;

run_tests();

__DATA__

=== TEST 1: GET /version
--- request
GET /version
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body chomp
{"version":"0.1.0"}
--- no_error_log
[error]



=== TEST 2: HEAD /version: headers only
--- request
HEAD /version
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body
--- no_error_log
[error]



=== TEST 3: /version takes GET only
--- request
POST /version
x
--- error_code: 405
--- json eval
exact({ error => qr/GET/ })



=== TEST 4: the API mounted under a prefix: /admin/version and /admin/v1/...
--- request eval
[ "GET /admin/version", "GET /admin/v1/enrollments/NOBODY", "GET /admin/something" ]
--- error_code eval
[ 200, 404, 404 ]
--- json eval
[ { version => "0.1.0" }, exact({ error => "unknown enrollment" }),
  exact({ error => "unknown endpoint" }) ]
--- no_error_log
[error]



=== TEST 5: no Authorization header: 401 with a Basic challenge and one error line
--- no_defaults
--- request
GET /version
--- error_code: 401
--- response_headers
WWW-Authenticate: Basic realm="ngx_mdm"
Content-Type: application/json
--- json eval
exact({ error => "wrong or missing API credentials" })
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: API request refused: no Authorization header[^\n]*\n\z/



=== TEST 6: a wrong key
--- no_defaults
--- more_headers eval
basic("nanomdm", "not-the-key")
--- request
GET /v1/enrollments/X
--- error_code: 401
--- response_headers
WWW-Authenticate: Basic realm="ngx_mdm"
--- json eval
exact({ error => "wrong or missing API credentials" })
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: API request refused: wrong user or key[^\n]*\n\z/



=== TEST 7: the right key with another user name
--- no_defaults
--- more_headers eval
basic("micromdm", $::KEY)
--- request
GET /version
--- error_code: 401
--- response_headers
WWW-Authenticate: Basic realm="ngx_mdm"
--- json eval
{ error => qr/credentials/ }
--- error_log
API request refused: wrong user or key



=== TEST 8: a prefix of the key, the key plus a byte, the key's case changed, an empty password
--- more_headers eval
[ basic("nanomdm", substr($::KEY, 0, -1)), basic("nanomdm", "$::KEY="),
  basic("nanomdm", uc $::KEY), basic("nanomdm", "") ]
--- request eval
[ "GET /version", "GET /version", "GET /version", "GET /version" ]
--- error_code eval
[ 401, 401, 401, 401 ]
--- json eval
[ ({ error => qr/credentials/ }) x 4 ]



=== TEST 9: not Basic, and Basic with broken base64
--- more_headers eval
[ "Authorization: Bearer $::KEY", "Authorization: Basic !!!notbase64" ]
--- request eval
[ "GET /version", "GET /version" ]
--- error_code eval
[ 401, 401 ]
--- json eval
[ { error => qr/credentials/ }, { error => qr/credentials/ } ]
--- response_headers eval
[ "WWW-Authenticate: Basic realm=\"ngx_mdm\"", "WWW-Authenticate: Basic realm=\"ngx_mdm\"" ]



=== TEST 10: no mdm_api_key: the API is off (403 JSON, even with credentials) and says so in the log
--- request
GET /nokey/v1/enrollments/X
--- error_code: 403
--- response_headers
Content-Type: application/json
!WWW-Authenticate
--- json eval
exact({ error => "the API is off: no mdm_api_key" })
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/^\[error\] [^\n]*mdm: API request refused: no mdm_api_key configured[^\n]*\n\z/



=== TEST 11: mdm_api_key "" is no key either
--- request
GET /emptykey/version
--- error_code: 403
--- json eval
{ error => qr/the API is off/ }
--- error_log
no mdm_api_key configured



=== TEST 12: mdm_api_key_file: the file's key (without its newline) opens the API, the other key does not
--- more_headers eval
[ basic("nanomdm", $::FILE_KEY), basic("nanomdm", "$::FILE_KEY\n"), $::AUTH ]
--- request eval
[ "GET /keyfile/version", "GET /keyfile/version", "GET /keyfile/version" ]
--- error_code eval
[ 200, 401, 401 ]
--- json eval
[ { version => "0.1.0" }, { error => qr/credentials/ }, { error => qr/credentials/ } ]



=== TEST 13: nginx's deny runs first: 403 from nginx, the module never sees the request
--- request
GET /denied/version
--- error_code: 403
--- response_body_like chomp
403 Forbidden
--- error_log
access forbidden by rule
--- no_error_log
mdm: API request



=== TEST 14: allow 127.0.0.1 lets the request through to the key check
--- request eval
[ "GET /local/version", "GET /local/version" ]
--- more_headers eval
[ $::AUTH, basic("nanomdm", "nope") ]
--- error_code eval
[ 200, 401 ]



=== TEST 15: mdm_api_key at server level is inherited by the location
--- config
mdm_api_key "server-key";
location /v1/ { mdm_api; }
location /own/ { mdm_api; mdm_api_key "own-key"; }
--- more_headers eval
[ basic("nanomdm", "server-key"), basic("nanomdm", "server-key"), basic("nanomdm", "own-key") ]
--- request eval
[ "GET /v1/enrollments/X", "GET /own/v1/enrollments/X", "GET /own/v1/enrollments/X" ]
--- error_code eval
[ 404, 401, 404 ]
--- json eval
[ { error => "unknown enrollment" }, { error => qr/credentials/ }, { error => "unknown enrollment" } ]



=== TEST 16: mdm_api needs mdm_redis in http{}
--- http_config
--- config
location /v1/ { mdm_api; mdm_api_key x; }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_api needs "mdm_redis" in http\{\}/



=== TEST 17: mdm_api_key_file: a missing file stops nginx
--- config
location /v1/ { mdm_api; mdm_api_key_file $TEST_NGINX_PKI/no-such.key; }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*cannot open mdm_api_key_file ".*no-such\.key"/



=== TEST 18: mdm_api_key_file: an empty file stops nginx
--- config
location /v1/ { mdm_api; mdm_api_key_file $TEST_NGINX_EMPTY_KEY_FILE; }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_api_key_file ".*empty\.key" is empty/



=== TEST 19: mdm_api_key and mdm_api_key_file together
--- config
location /v1/ { mdm_api; mdm_api_key x; mdm_api_key_file $TEST_NGINX_API_KEY_FILE; }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*"mdm_api_key_file" directive is duplicate/



=== TEST 20: flow 1/12: a device authenticates (signed check-in)
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- request eval
checkin_request($::AUTHN, UDID => $::DEV)
--- signed_by: flow
--- error_code: 200
--- no_error_log
[error]



=== TEST 21: flow 2/12: the API shows it, disabled until TokenUpdate
--- request eval
"GET /v1/enrollments/$::DEV"
--- error_code: 200
--- json eval
{ id => $::DEV, type => "Device", enabled => JSON::PP::false,
  token_update_tally => num(0), queue_length => num(0),
  has_push_token => JSON::PP::false }



=== TEST 22: flow 3/12: TokenUpdate enables it
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- request eval
checkin_request($::TOKEN, UDID => $::DEV)
--- signed_by: flow
--- error_code: 200
--- no_error_log
[error]



=== TEST 23: flow 4/12: GET /v1/enrollments/ID: what the device said, never its tokens
--- request eval
"GET /v1/enrollments/$::DEV"
--- error_code: 200
--- response_headers
Content-Type: application/json
--- json eval
my $tu = vector($::TOKEN);
my ($magic, $token) = (plist_get($tu, "PushMagic"), plist_get($tu, "Token"));
all_of({ id => $::DEV, type => "Device", enabled => JSON::PP::true,
  serial_number => "C02MT66KFLHH", os_version => "10.12.6", model => "iMac14,2",
  topic => plist_get(vector($::AUTHN), "Topic"),
  token_update_tally => num(1), queue_length => num(0),
  cert_hash => cert_sha256("flow"), cert_not_after => num(qr/^\d{10}$/),
  device_id => $::DEV, udid => $::DEV, enrollment_id => absent(),
  has_push_token => JSON::PP::true, has_unlock_token => JSON::PP::false,
  has_bootstrap_token => JSON::PP::false,
  token => absent(), push_magic => absent(), unlock_token => absent(),
  bootstrap_token => absent(), authenticate => absent() },
  sub { my $hex = redis("HGET", "mdm:enr:{$::DEV}", "token");
        length $hex == 64 && index($::JBody, $hex) < 0
        && index($::JBody, $magic) < 0 && index($::JBody, $token) < 0 },
  sub { my $c = JSON::PP::decode_json($::JBody)->{certificates};
        ref $c eq "HASH" && keys %$c == 1
        && $c->{ cert_sha256("flow") } =~ /^\d{10}$/ })
--- no_error_log
[error]



=== TEST 24: flow 5/12: enqueue a command for it: queued, pushed, stored
--- redis_setup
DEL mdm:push mdm:push:pending
--- request eval
"PUT /v1/enqueue/$::DEV\n" . cmd_plist("ProfileList", "FLOW-CMD-1")
--- error_code: 200
--- response_headers
Content-Type: application/json
--- json eval
exact({ status => exact({ $::DEV => exact({ push_result => "queued" }) }),
        command_uuid => "FLOW-CMD-1", request_type => "ProfileList",
        no_push => JSON::PP::false })
--- redis_check eval
[
  [ "HGET mdm:cmd:FLOW-CMD-1 plist", sent(cmd_plist("ProfileList", "FLOW-CMD-1")) ],
  [ "HGET mdm:cmd:FLOW-CMD-1 request_type", "ProfileList" ],
  [ "HGET mdm:cmd:FLOW-CMD-1 created_at", qr/^\d{13}$/ ],
  [ "HGET mdm:cmd:FLOW-CMD-1 priority", "0" ],
  [ "HEXISTS mdm:cmd:FLOW-CMD-1 expires_at", "0" ],
  [ "HEXISTS mdm:cmd:FLOW-CMD-1 max_deliveries", "0" ],
  [ "SMEMBERS mdm:cmd:FLOW-CMD-1:targets", [ $::DEV ] ],
  [ "LRANGE mdm:q:{$::DEV} 0 -1", [ "FLOW-CMD-1" ] ],
  [ "LRANGE mdm:push 0 -1", [ $::DEV ] ],
]
--- no_error_log
[error]



=== TEST 25: flow 6/12: GET /v1/queue/ID and GET /v1/commands/UUID before delivery
--- request eval
[ "GET /v1/queue/$::DEV", "GET /v1/commands/FLOW-CMD-1" ]
--- error_code eval
[ 200, 200 ]
--- json eval
[ exact({ id => $::DEV, cursor => "", total => num(1), commands => [
      { command_uuid => "FLOW-CMD-1", request_type => "ProfileList",
        deliveries => num(0), not_now_tally => num(0),
        created_at => num(qr/^\d{13}$/), last_status => absent(),
        expires_at => absent(), max_deliveries => absent() } ] }),
  { command_uuid => "FLOW-CMD-1", request_type => "ProfileList",
    plist => sent(cmd_plist("ProfileList", "FLOW-CMD-1")),
    created_at => num(qr/^\d{13}$/), priority => JSON::PP::false,
    enrollments => exact({ $::DEV => { status => "Queued", deliveries => num(0),
                                       report => absent() } }) } ]
--- no_error_log
[error]



=== TEST 26: flow 7/12: the device asks (Idle) and gets the command
--- more_headers
Content-Type: application/x-apple-aspen-mdm
--- request eval
"PUT /mdm/connect\n" . report($::DEV, "Idle")
--- signed_by: flow
--- error_code: 200
--- response_body_like
<key>CommandUUID</key>\s*<string>FLOW-CMD-1</string>
--- no_error_log
[error]



=== TEST 27: flow 8/12: the queue counts the delivery; the command is still Queued
--- request eval
[ "GET /v1/queue/$::DEV", "GET /v1/commands/FLOW-CMD-1" ]
--- error_code eval
[ 200, 200 ]
--- json eval
[ { commands => [ { command_uuid => "FLOW-CMD-1", deliveries => num(1) } ] },
  { enrollments => { $::DEV => { status => "Queued", deliveries => num(1) } } } ]



=== TEST 28: flow 9/12: the device acknowledges it
--- more_headers
Content-Type: application/x-apple-aspen-mdm
--- request eval
"PUT /mdm/connect\n" . report($::DEV, "Acknowledged", "FLOW-CMD-1")
--- signed_by: flow
--- error_code: 200
--- response_body
--- no_error_log
[error]



=== TEST 29: flow 10/12: the command shows the report, the queue is empty
--- request eval
[ "GET /v1/commands/FLOW-CMD-1", "GET /v1/queue/$::DEV", "GET /v1/enrollments/$::DEV" ]
--- error_code eval
[ 200, 200, 200 ]
--- json eval
[ { enrollments => { $::DEV => { status => "Acknowledged",
                                 report => sent(report($::DEV, "Acknowledged", "FLOW-CMD-1")),
                                 updated_at => num(qr/^\d{13}$/),
                                 completed_at => num(qr/^\d{13}$/) } } },
  exact({ id => $::DEV, commands => [], cursor => "", total => num(0) }),
  { queue_length => num(0), last_seen => num(qr/^\d{13}$/) } ]



=== TEST 30: flow 11/12: /v1/push/ID (any method); three pushes wait as one (issue 9 #10)
--- redis_setup
DEL mdm:push mdm:push:pending
--- request eval
[ "GET /v1/push/$::DEV", "POST /v1/push/$::DEV\nignored", "PUT /v1/push/$::DEV" ]
--- error_code eval
[ 200, 200, 200 ]
--- json eval
[ ({ status => exact({ $::DEV => exact({ push_result => "queued" }) }) }) x 3 ]
--- redis_check eval
[ [ "LRANGE mdm:push 0 -1", [ $::DEV ] ],
  [ "SMEMBERS mdm:push:pending", [ $::DEV ] ] ]
--- no_error_log
[error]



=== TEST 31: flow 12/12: push to a known and an unknown enrollment: 207; only unknown ones: 400
--- redis_setup
DEL mdm:push mdm:push:pending
--- request eval
[ "GET /v1/push/$::DEV,NOBODY-1", "GET /v1/push/NOBODY-1,NOBODY-2" ]
--- error_code eval
[ 207, 400 ]
--- json eval
[ { status => exact({ $::DEV => { push_result => "queued" },
                      "NOBODY-1" => exact({ push_error => "unknown enrollment" }) }) },
  { status => exact({ "NOBODY-1" => { push_error => "unknown enrollment" },
                      "NOBODY-2" => { push_error => "unknown enrollment" } }) } ]
--- redis_check eval
[ [ "LRANGE mdm:push 0 -1", [ $::DEV ] ] ]



=== TEST 32: enqueue with nopush=1: queued, nothing for the push worker
--- redis_setup eval
[ enr("ENQ-1"), enr("ENQ-2"), enr("ENQ-3"), enr("ENQ-1:USER-1"), [ "DEL", "mdm:push", "mdm:push:pending" ] ]
--- request eval
"PUT /v1/enqueue/ENQ-1?nopush=1\n" . cmd_plist("DeviceInformation", "ENQ-CMD-1")
--- error_code: 200
--- json eval
exact({ status => exact({ "ENQ-1" => exact({}) }), command_uuid => "ENQ-CMD-1",
        request_type => "DeviceInformation", no_push => JSON::PP::true })
--- redis_check eval
[
  [ "EXISTS mdm:push", "0" ],
  [ "LRANGE mdm:q:{ENQ-1} 0 -1", [ "ENQ-CMD-1" ] ],
]
--- no_error_log
[error]



=== TEST 33: POST works too; a missing CommandUUID is generated (upper-case v4) and written into the stored plist
--- request eval
"POST /v1/enqueue/ENQ-2?nopush=1\n" . cmd_plist("SecurityInfo", undef)
--- error_code: 200
--- json eval
{ command_uuid => sub {
      my ($u) = @_;
      Test::More::like($u, $::UUID_RE, "generated UUID looks like uuidgen's");
      my $pl = redis("HGET", "mdm:cmd:$u", "plist") // '';
      Test::More::like($pl, qr{<key>CommandUUID</key>\s*<string>\Q$u\E</string>},
                       "stored plist carries the generated UUID");
      Test::More::like($pl, qr{<key>RequestType</key>\s*<string>SecurityInfo</string>},
                       "stored plist keeps the command");
      Test::More::is_deeply(redis("LRANGE", "mdm:q:{ENQ-2}", 0, -1), [ $u ],
                            "queued under the generated UUID");
      1 },
  request_type => "SecurityInfo" }



=== TEST 34: two enqueues without CommandUUID get different UUIDs
--- request eval
[ "PUT /v1/enqueue/ENQ-3?nopush=1\n" . cmd_plist("ProfileList", undef),
  "PUT /v1/enqueue/ENQ-3?nopush=1\n" . cmd_plist("ProfileList", undef) ]
--- error_code eval
[ 200, 200 ]
--- json eval
[ { command_uuid => sub { $::First = $_[0]; $_[0] =~ $::UUID_RE } },
  { command_uuid => sub { $_[0] =~ $::UUID_RE && $_[0] ne $::First } } ]
--- redis_check eval
[ [ "LLEN mdm:q:{ENQ-3}", "2" ] ]



=== TEST 35: a CommandUUID already used: 409, nothing queued
--- request eval
"PUT /v1/enqueue/ENQ-2\n" . cmd_plist("ProfileList", "ENQ-CMD-1")
--- error_code: 409
--- json eval
exact({ error => qr/ENQ-CMD-1 already exists/ })
--- redis_check eval
[
  [ "LLEN mdm:q:{ENQ-2}", "1" ],
  [ "HGET mdm:cmd:ENQ-CMD-1 request_type", "DeviceInformation" ],
  [ "SMEMBERS mdm:cmd:ENQ-CMD-1:targets", [ "ENQ-1" ] ],
]



=== TEST 36: known and unknown enrollments: 207; each unknown one says so
--- redis_setup
DEL mdm:push mdm:push:pending
--- request eval
"PUT /v1/enqueue/ENQ-2,NOBODY-1,ENQ-3,NOBODY-2\n" . cmd_plist("ProfileList", "ENQ-CMD-207")
--- error_code: 207
--- json eval
exact({ status => exact({ "ENQ-2" => exact({ push_result => "queued" }),
                          "ENQ-3" => exact({ push_result => "queued" }),
                          "NOBODY-1" => exact({ command_error => "unknown enrollment" }),
                          "NOBODY-2" => exact({ command_error => "unknown enrollment" }) }),
        command_uuid => "ENQ-CMD-207", request_type => "ProfileList",
        no_push => JSON::PP::false })
--- redis_check eval
[
  [ "LRANGE mdm:push 0 -1", [ "ENQ-2", "ENQ-3" ] ],
  [ [ "SMEMBERS", "mdm:cmd:ENQ-CMD-207:targets" ], sub { CORE::join(",", sort @{ $_[0] }) eq "ENQ-2,ENQ-3" } ],
  [ "EXISTS mdm:q:{NOBODY-1}", "0" ],
]



=== TEST 37: only unknown enrollments: 400 and the command is not stored (its UUID stays free)
--- request eval
[ "PUT /v1/enqueue/NOBODY-1,NOBODY-2\n" . cmd_plist("ProfileList", "ENQ-CMD-400"),
  "PUT /v1/enqueue/ENQ-1?nopush=1\n" . cmd_plist("ProfileList", "ENQ-CMD-400") ]
--- error_code eval
[ 400, 200 ]
--- json eval
[ { status => exact({ "NOBODY-1" => exact({ command_error => "unknown enrollment" }),
                      "NOBODY-2" => exact({ command_error => "unknown enrollment" }) }),
    command_uuid => "ENQ-CMD-400" },
  { status => { "ENQ-1" => {} } } ]
--- redis_check eval
[ [ "SMEMBERS mdm:cmd:ENQ-CMD-400:targets", [ "ENQ-1" ] ] ]



=== TEST 38: a user channel DEVICE:USER has its own queue
--- request eval
"PUT /v1/enqueue/ENQ-1:USER-1?nopush=1\n" . cmd_plist("ProfileList", "ENQ-CMD-USER")
--- error_code: 200
--- json eval
{ status => exact({ "ENQ-1:USER-1" => exact({}) }) }
--- redis_check eval
[
  [ "LRANGE mdm:q:{ENQ-1}:USER-1 0 -1", [ "ENQ-CMD-USER" ] ],
  [ "LRANGE mdm:q:{ENQ-1} 0 -1", [ "ENQ-CMD-1", "ENQ-CMD-400" ] ],
]



=== TEST 39: priority=1 goes to the front; expires and max_deliveries are stored and shown
--- redis_setup
DEL mdm:q:{ENQ-2}
--- request eval
[ "PUT /v1/enqueue/ENQ-2?nopush=1\n" . cmd_plist("ProfileList", "PRIO-A"),
  "PUT /v1/enqueue/ENQ-2?nopush=1&priority=1&expires=3600&max_deliveries=3\n" . cmd_plist("DeviceLock", "PRIO-B"),
  "PUT /v1/enqueue/ENQ-2?priority=0&nopush=1\n" . cmd_plist("ProfileList", "PRIO-C"),
  "GET /v1/queue/ENQ-2",
  "GET /v1/commands/PRIO-B" ]
--- error_code eval
[ 200, 200, 200, 200, 200 ]
--- json eval
my $in_an_hour = sub { my $t = $_[0]; abs($t - (Time::HiRes::time() + 3600) * 1000) < 60_000 };
[ undef, undef, undef,
  { id => "ENQ-2", commands => [
      { command_uuid => "PRIO-B", request_type => "DeviceLock",
        expires_at => num($in_an_hour), max_deliveries => num(3) },
      { command_uuid => "PRIO-A", expires_at => absent(), max_deliveries => absent() },
      { command_uuid => "PRIO-C" } ] },
  { priority => JSON::PP::true, expires_at => num($in_an_hour), max_deliveries => num(3) } ]
--- redis_check eval
[
  [ "HGET mdm:cmd:PRIO-B priority", "1" ],
  [ "HGET mdm:cmd:PRIO-B max_deliveries", "3" ],
  [ "HGET mdm:cmd:PRIO-B expires_at", qr/^\d{13}$/ ],
  [ "HGET mdm:cmd:PRIO-C priority", "0" ],
]



=== TEST 39b: several priority commands keep their order (DeviceLock before EraseDevice), ahead of the rest
--- redis_setup
DEL mdm:q:{ENQ-2} mdm:qp:{ENQ-2}
--- request eval
[ "PUT /v1/enqueue/ENQ-2?nopush=1\n" . cmd_plist("ProfileList", "LANE-A"),
  "PUT /v1/enqueue/ENQ-2?nopush=1&priority=1\n" . cmd_plist("DeviceLock", "LANE-B"),
  "PUT /v1/enqueue/ENQ-2?nopush=1&priority=true\n" . cmd_plist("EraseDevice", "LANE-C"),
  "GET /v1/queue/ENQ-2" ]
--- error_code eval
[ 200, 200, 200, 200 ]
--- json eval
[ undef, undef, undef,
  { id => "ENQ-2", commands => [ { command_uuid => "LANE-B" }, { command_uuid => "LANE-C" },
                                 { command_uuid => "LANE-A" } ] } ]
--- redis_check eval
[
  [ "LRANGE mdm:qp:{ENQ-2} 0 -1", [ "LANE-B", "LANE-C" ] ],
  [ "LRANGE mdm:q:{ENQ-2} 0 -1", [ "LANE-A" ] ],
]



=== TEST 40: enqueue takes PUT or POST only
--- request eval
[ "GET /v1/enqueue/ENQ-1", "DELETE /v1/enqueue/ENQ-1", "PATCH /v1/enqueue/ENQ-1\n" . cmd_plist("ProfileList", "PATCHED") ]
--- error_code eval
[ 405, 405, 405 ]
--- json eval
[ ({ error => "enqueue takes PUT or POST" }) x 3 ]
--- redis_check
EXISTS mdm:cmd:PATCHED => 0



=== TEST 41: one command to 1,000 enrollments in one call
--- redis_setup eval
[ [ "EVAL", q{for i = 1, 1000 do
                redis.call('HSET', string.format('mdm:enr:{BULK-%04d}', i),
                           'type', 'Device', 'enabled', '1')
              end}, 0 ],
  [ "DEL", "mdm:push", "mdm:push:pending" ] ]
--- request eval
"PUT /v1/enqueue/" . CORE::join(",", map { sprintf "BULK-%04d", $_ } 1 .. 1000) . "\n"
. cmd_plist("InstalledApplicationList", "BULK-CMD-1")
--- error_code: 200
--- json eval
{ command_uuid => "BULK-CMD-1", no_push => JSON::PP::false,
  status => sub {
      my ($s) = @_;
      my @k = sort keys %$s;
      @k == 1000 && $k[0] eq "BULK-0001" && $k[-1] eq "BULK-1000"
      && !grep { ($s->{$_}{push_result} // '') ne "queued" } @k } }
--- redis_check eval
[
  [ "SCARD mdm:cmd:BULK-CMD-1:targets", "1000" ],
  [ "LLEN mdm:push", "1000" ],
  [ "LRANGE mdm:push 0 2", [ "BULK-0001", "BULK-0002", "BULK-0003" ] ],
  [ "LRANGE mdm:q:{BULK-0001} 0 -1", [ "BULK-CMD-1" ] ],
  [ "LRANGE mdm:q:{BULK-0500} 0 -1", [ "BULK-CMD-1" ] ],
  [ "LRANGE mdm:q:{BULK-1000} 0 -1", [ "BULK-CMD-1" ] ],
  [ [ "EVAL", "local n = 0 for i = 1, 1000 do n = n + redis.call('LLEN', string.format('mdm:q:{BULK-%04d}', i)) end return n", 0 ], "1000" ],
]
--- no_error_log
[error]



=== TEST 42: 10,000 ids pass the list check (all unknown here: 400 per id); 10,001 do not
--- request eval
[ "PUT /v1/enqueue/" . CORE::join(",", ("N") x 10000) . "\n" . cmd_plist("ProfileList", "MANY-1"),
  "PUT /v1/enqueue/" . CORE::join(",", ("N") x 10001) . "\n" . cmd_plist("ProfileList", "MANY-2"),
  "GET /v1/push/" . CORE::join(",", ("N") x 10001) ]
--- error_code eval
[ 400, 400, 400 ]
--- json eval
[ { status => exact({ N => { command_error => "unknown enrollment" } }),
    error => absent() },
  exact({ error => "invalid enrollment id list" }),
  exact({ error => "invalid enrollment id list" }) ]



=== TEST 43: the same id twice in one enqueue queues the command once
--- redis_setup
DEL mdm:q:{ENQ-3} mdm:push mdm:push:pending
--- request eval
"PUT /v1/enqueue/ENQ-3,ENQ-3,ENQ-3\n" . cmd_plist("ProfileList", "DUP-IDS")
--- error_code: 200
--- json eval
{ status => exact({ "ENQ-3" => { push_result => "queued" } }) }
--- redis_check eval
[ [ "LRANGE mdm:q:{ENQ-3} 0 -1", [ "DUP-IDS" ] ],
  [ "LRANGE mdm:push 0 -1", [ "ENQ-3" ] ] ]



=== TEST 44: a path segment after the id list is not ignored: 404 as for the other endpoints
--- request eval
[ "PUT /v1/enqueue/ENQ-3/extra?nopush=1\n" . cmd_plist("ProfileList", "EXTRA-SEG"),
  "GET /v1/push/ENQ-3/extra" ]
--- error_code eval
[ 404, 404 ]
--- json eval
[ (exact({ error => "unknown endpoint" })) x 2 ]
--- redis_check
EXISTS mdm:cmd:EXTRA-SEG => 0



=== TEST 45: an absurd expires is refused or still lies in the future (no overflow into the past)
--- request eval
"PUT /v1/enqueue/ENQ-3?nopush=1&expires=9223372036854775000\n" . cmd_plist("ProfileList", "EXP-HUGE")
--- error_code_like: ^(200|400)$
--- redis_check eval
[ [ [ "HGET", "mdm:cmd:EXP-HUGE", "expires_at" ],
    sub { !defined $_[0] || $_[0] =~ /^\d+$/ && $_[0] > Time::HiRes::time() * 1000 } ] ]



=== TEST 46: a command larger than the client body buffer (read back from nginx's temporary file) is stored byte for byte
--- request eval
"PUT /v1/enqueue/ENQ-3?nopush=1\n"
. cmd_plist("InstallProfile", "BIG-1", "\t\t<key>Payload</key>\n\t\t<data>\n"
            . CORE::join("", map { ("QUJDRE" x 12) . "\n" } 1 .. 3000) . "\t\t</data>\n")
--- error_code: 200
--- json eval
{ command_uuid => "BIG-1" }
--- redis_check eval
[ [ "HGET mdm:cmd:BIG-1 plist",
    sent(cmd_plist("InstallProfile", "BIG-1", "\t\t<key>Payload</key>\n\t\t<data>\n"
            . CORE::join("", map { ("QUJDRE" x 12) . "\n" } 1 .. 3000) . "\t\t</data>\n")) ] ]



=== TEST 47: bodies that are not an XML plist dictionary: 400
--- request eval
[ "PUT /v1/enqueue/ENQ-1",
  "PUT /v1/enqueue/ENQ-1\n{\"Command\":{\"RequestType\":\"ProfileList\"}}",
  "PUT /v1/enqueue/ENQ-1\nbplist00\xd1\x01\x02TabcdTdefg\x08\x0b\x10\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x15",
  "PUT /v1/enqueue/ENQ-1\n" . raw_plist("<array><string>x</string></array>"),
  "PUT /v1/enqueue/ENQ-1\n" . substr(cmd_plist("ProfileList", "TRUNC"), 0, 150),
  "PUT /v1/enqueue/ENQ-1\n" . raw_plist("<string>ProfileList</string>") ]
--- error_code eval
[ (400) x 6 ]
--- json eval
[ exact({ error => "no command plist in the body" }),
  (exact({ error => "the body is not an XML plist dictionary" })) x 5 ]
--- redis_check
EXISTS mdm:cmd:TRUNC => 0



=== TEST 48: no Command dictionary with a RequestType string: 400; nothing stored, nothing queued
--- redis_setup eval
sub { $::Snap = ::snapshot() }
--- request eval
[ "PUT /v1/enqueue/ENQ-1\n" . raw_plist("<dict><key>CommandUUID</key><string>NC-1</string></dict>"),
  "PUT /v1/enqueue/ENQ-1\n" . raw_plist("<dict><key>Command</key><string>ProfileList</string><key>CommandUUID</key><string>NC-2</string></dict>"),
  "PUT /v1/enqueue/ENQ-1\n" . raw_plist("<dict><key>Command</key><dict><key>Foo</key><string>x</string></dict><key>CommandUUID</key><string>NC-3</string></dict>"),
  "PUT /v1/enqueue/ENQ-1\n" . raw_plist("<dict><key>Command</key><dict><key>RequestType</key><integer>3</integer></dict><key>CommandUUID</key><string>NC-4</string></dict>"),
  "PUT /v1/enqueue/ENQ-1\n" . cmd_plist("", "NC-5"),
  "PUT /v1/enqueue/ENQ-1\n" . raw_plist("<dict><key>RequestType</key><string>ProfileList</string><key>CommandUUID</key><string>NC-6</string></dict>") ]
--- error_code eval
[ (400) x 6 ]
--- json eval
[ (exact({ error => "no Command dictionary with a RequestType string" })) x 6 ]
--- redis_check eval
[ [ [ "EVAL", $::SnapScript, 0 ], sub { Test::More::is($_[0], $::Snap, "no command stored or queued") } ] ]
--- no_error_log
[alert]



=== TEST 49: CommandUUID must be a string of [A-Za-z0-9._@+-], 1 to 128 long; the rejected ones are neither stored nor queued
--- redis_setup eval
sub { $::Snap = ::snapshot() }
--- request eval
[ map({ "PUT /v1/enqueue/ENQ-1?nopush=1\n" . cmd_plist("ProfileList", $_) }
      "has space", "a/b", "a{b}", "x" x 129, "", "caf\xc3\xa9", "a:b", "a&amp;b"),
  "PUT /v1/enqueue/ENQ-1?nopush=1\n" . raw_plist("<dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict><key>CommandUUID</key><integer>7</integer></dict>"),
  "PUT /v1/enqueue/ENQ-1?nopush=1\n" . cmd_plist("ProfileList", "U" x 128),
  "PUT /v1/enqueue/ENQ-1?nopush=1\n" . cmd_plist("ProfileList", "a.b_c\@d+e-F.9") ]
--- error_code eval
[ (400) x 9, 200, 200 ]
--- json eval
[ (exact({ error => qr/^CommandUUID has characters outside \[A-Za-z0-9\._\@\+-\] or is longer than 128$/ })) x 8,
  exact({ error => "CommandUUID is not a string" }),
  { command_uuid => "U" x 128 }, { command_uuid => "a.b_c\@d+e-F.9" } ]
--- redis_check eval
[ [ [ "EVAL", $::SnapScript, 0 ],
    sub { my ($n, $q) = split /\|/, $::Snap, 2;
          Test::More::is($_[0], ($n + 2) . "|$q," . ("U" x 128) . ",a.b_c\@d+e-F.9",
                         "only the two valid commands stored and queued") } ] ]
--- no_error_log
[alert]



=== TEST 50: enrollment id lists that are not valid: 400 before anything is stored
--- request eval
[ map({ "PUT /v1/enqueue/$_?nopush=1\n" . cmd_plist("ProfileList", "BADIDS") }
      "", "ENQ-1,", ",ENQ-1", "ENQ-1,,ENQ-2", "ENQ%201", "ENQ*", "%7BENQ-1%7D",
      "ENQ-1:", ":USER-1", "ENQ-1:USER-1:X", "x" x 129, "ENQ-1:" . "u" x 129,
      "caf%C3%A9", "ENQ-1%0A", ","),
  "PUT /v1/enqueue?nopush=1\n" . cmd_plist("ProfileList", "BADIDS") ]
--- error_code eval
[ (400) x 16 ]
--- json eval
[ (exact({ error => "invalid enrollment id list" })) x 16 ]
--- redis_check
EXISTS mdm:cmd:BADIDS => 0



=== TEST 51: ids at the limits are valid: 128 characters per part
--- redis_setup eval
[ enr("D" x 128), enr(("D" x 128) . ":" . ("U" x 128)) ]
--- request eval
"PUT /v1/enqueue/" . ("D" x 128) . "," . ("D" x 128) . ":" . ("U" x 128) . "?nopush=1\n"
. cmd_plist("ProfileList", "LONG-IDS")
--- error_code: 200
--- json eval
{ status => exact({ ("D" x 128) => {}, (("D" x 128) . ":" . ("U" x 128)) => {} }) }



=== TEST 52: bad expires and max_deliveries: 400
--- request eval
[ map({ "PUT /v1/enqueue/ENQ-1?nopush=1&$_\n" . cmd_plist("ProfileList", "BADQ") }
      "expires=soon", "expires=-5", "max_deliveries=0", "max_deliveries=-1", "max_deliveries=two") ]
--- error_code eval
[ (400) x 5 ]
--- json eval
[ (exact({ error => "expires is a number of seconds, up to ten years" })) x 2,
  (exact({ error => "max_deliveries is a positive number" })) x 3 ]
--- redis_check
EXISTS mdm:cmd:BADQ => 0



=== TEST 53: /v1/push with invalid id lists: 400
--- request eval
[ map { "GET /v1/push/$_" } "", "A,", ",A", "A,,B", "A%20B", "%7BA%7D", "A:", "x" x 129 ]
--- error_code eval
[ (400) x 8 ]
--- json eval
[ (exact({ error => "invalid enrollment id list" })) x 8 ]



=== TEST 54: queue details: NotNow is counted and shown
--- redis_setup eval
[ [ "DEL", "mdm:q:{$::DEV}" ] ]
--- request eval
[ "PUT /v1/enqueue/$::DEV?nopush=1\n" . cmd_plist("ProfileList", "Q-1"),
  "PUT /v1/enqueue/$::DEV?nopush=1\n" . cmd_plist("SecurityInfo", "Q-2"),
  "PUT /v1/enqueue/$::DEV?nopush=1\n" . cmd_plist("DeviceInformation", "Q-3") ]
--- error_code eval
[ 200, 200, 200 ]



=== TEST 55: (the device gets Q-1 and answers NotNow)
--- more_headers eval
[ "Content-Type: application/x-apple-aspen-mdm", "Content-Type: application/x-apple-aspen-mdm" ]
--- request eval
[ "PUT /mdm/connect\n" . report($::DEV, "Idle"),
  "PUT /mdm/connect\n" . report($::DEV, "NotNow", "Q-1") ]
--- signed_by: flow
--- error_code eval
[ 200, 200 ]
--- response_body_like eval
[ qr{<string>Q-1</string>}, qr{<string>Q-2</string>} ]



=== TEST 56: GET /v1/queue/ID: queue order, deliveries, last status, NotNow tally
--- request eval
"GET /v1/queue/$::DEV"
--- error_code: 200
--- json eval
exact({ id => $::DEV, cursor => "", total => num(3), commands => [
    exact({ command_uuid => "Q-1", request_type => "ProfileList", deliveries => num(1),
            last_status => "NotNow", not_now_tally => num(1),
            created_at => num(qr/^\d{13}$/), updated_at => num(qr/^\d{13}$/) }),
    { command_uuid => "Q-2", request_type => "SecurityInfo", deliveries => num(1),
      last_status => absent(), not_now_tally => num(0) },
    { command_uuid => "Q-3", request_type => "DeviceInformation", deliveries => num(0),
      last_status => absent() } ] })



=== TEST 57: DELETE /v1/queue/ID/UUID removes one command and marks it Deleted; again: 404
--- request eval
[ "DELETE /v1/queue/$::DEV/Q-2", "DELETE /v1/queue/$::DEV/Q-2", "GET /v1/commands/Q-2",
  "GET /v1/queue/$::DEV" ]
--- error_code eval
[ 200, 404, 200, 200 ]
--- json eval
[ exact({ id => $::DEV, removed => [ "Q-2" ], remaining => num(2) }),
  exact({ error => "command is not queued for this enrollment" }),
  { enrollments => { $::DEV => { status => "Deleted", completed_at => num(qr/^\d{13}$/) } } },
  { commands => [ { command_uuid => "Q-1" }, { command_uuid => "Q-3" } ] } ]
--- redis_check eval
[ [ "LRANGE mdm:q:{$::DEV} 0 -1", [ "Q-1", "Q-3" ] ] ]



=== TEST 58: DELETE /v1/queue/ID empties the queue, in order; each command is marked Deleted
--- request eval
[ "DELETE /v1/queue/$::DEV", "GET /v1/commands/Q-1", "GET /v1/commands/Q-3",
  "GET /v1/queue/$::DEV", "DELETE /v1/queue/$::DEV" ]
--- error_code eval
[ 200, 200, 200, 200, 200 ]
--- json eval
[ exact({ id => $::DEV, removed => [ "Q-1", "Q-3" ], remaining => num(0) }),
  { enrollments => { $::DEV => { status => "Deleted" } } },
  { enrollments => { $::DEV => { status => "Deleted" } } },
  exact({ id => $::DEV, commands => [], cursor => "", total => num(0) }),
  exact({ id => $::DEV, removed => [], remaining => num(0) }) ]
--- redis_check eval
[ [ "EXISTS mdm:q:{$::DEV}", "0" ] ]



=== TEST 59: queue: unknown enrollment 404, wrong methods 405, bad ids 400
--- request eval
[ "GET /v1/queue/NOBODY-1", "POST /v1/queue/$::DEV\nx", "PUT /v1/queue/$::DEV",
  "GET /v1/queue/$::DEV/Q-1", "DELETE /v1/queue/$::DEV/bad%20uuid",
  "DELETE /v1/queue/%7BX%7D", "GET /v1/queue/", "GET /v1/queue/$::DEV/Q-1/extra",
  "DELETE /v1/queue/NOBODY-1" ]
--- error_code eval
[ 404, 405, 405, 405, 400, 400, 400, 404, 200 ]
--- json eval
[ exact({ error => "unknown enrollment" }),
  ({ error => qr/takes GET or DELETE/ }) x 3,
  (exact({ error => "invalid enrollment id or command UUID" })) x 3,
  exact({ error => "unknown endpoint" }),
  exact({ id => "NOBODY-1", removed => [], remaining => num(0) }) ]



=== TEST 60: commands: unknown 404, bad UUID 400, no UUID 400, wrong method 405, extra segment 404
--- request eval
[ "GET /v1/commands/NO-SUCH-CMD", "GET /v1/commands/bad%20uuid", "GET /v1/commands/",
  "DELETE /v1/commands/FLOW-CMD-1", "PUT /v1/commands/FLOW-CMD-1\nx",
  "GET /v1/commands/FLOW-CMD-1/x" ]
--- error_code eval
[ 404, 400, 400, 405, 405, 404 ]
--- json eval
[ exact({ error => "unknown command" }),
  (exact({ error => "invalid command UUID" })) x 2,
  (exact({ error => "commands/UUID takes GET" })) x 2,
  exact({ error => "unknown endpoint" }) ]



=== TEST 61: an enrollment or a command named "version" is not the /version endpoint
--- redis_setup eval
[ enr("version"), [ "DEL", "mdm:q:{version}" ] ]
--- request eval
[ "PUT /v1/enqueue/version?nopush=1\n" . cmd_plist("ProfileList", "version"),
  "GET /v1/enrollments/version", "GET /v1/queue/version", "GET /v1/commands/version",
  "DELETE /v1/queue/version/version" ]
--- error_code eval
[ 200, 200, 200, 200, 200 ]
--- json eval
[ { command_uuid => "version" },
  { id => "version", type => "Device", queue_length => num(1) },
  { id => "version", commands => [ { command_uuid => "version" } ] },
  { command_uuid => "version", request_type => "ProfileList" },
  exact({ id => "version", removed => [ "version" ], remaining => num(0) }) ]



=== TEST 62: one enrollment: unknown 404, bad id 400, wrong method 405, unknown sub-path 404; a user channel
--- redis_setup eval
[ enr("ENR-1:USER-9", user_short_name => "jdoe", last_seen => "1700000000000"),
  [ "RPUSH", "mdm:q:{ENR-1}:USER-9", "A", "B" ] ]
--- request eval
[ "GET /v1/enrollments/NOBODY-1", "GET /v1/enrollments/%7BX%7D", "PUT /v1/enrollments/$::DEV",
  "GET /v1/enrollments/$::DEV/x", "GET /v1/enrollments/ENR-1:USER-9" ]
--- error_code eval
[ 404, 400, 405, 404, 200 ]
--- json eval
[ exact({ error => "unknown enrollment" }),
  exact({ error => "invalid enrollment id or command UUID" }),
  exact({ error => "enrollments/ID takes GET or DELETE" }),
  exact({ error => "unknown endpoint" }),
  { id => "ENR-1:USER-9", type => "User", parent => "ENR-1", user_short_name => "jdoe",
    last_seen => num(1700000000000), queue_length => num(2), enabled => JSON::PP::true } ]



=== TEST 63: GET /v1/enrollments: one page holds everything at count=1000; other keys are not enrollments
--- redis_setup eval
my @c = ([ "FLUSHALL" ]);
for my $i (1 .. 12) {
    push @c, enr(sprintf("LIST-D%02d", $i), enabled => $i % 3 ? 1 : 0,
                 last_seen => 1700000000000 + $i * 1000, serial_number => "SN$i",
                 token => "ab" x 32, push_magic => "MAGIC-SECRET-$i",
                 unlock_token => "VU5MT0NL", bootstrap_token => "Qk9PVA==");
}
push @c, enr("LIST-D01:LIST-U1"), enr("LIST-D02:LIST-U2", enabled => 0),
         enr("LIST-UE", type => "User Enrollment (Device)"),
         enr("LIST-UE:EU", type => "User Enrollment"),
         [ "SET", "mdm:enr:{DECOY}", "a string, not an enrollment" ],
         [ "RPUSH", "mdm:q:{LIST-D01}", "X" ], [ "HSET", "mdm:cmd:X", "plist", "x" ],
         [ "HSET", "mdm:enrx:{NOT}", "type", "Device" ];
\@c
--- request
GET /v1/enrollments?count=1000
--- error_code: 200
--- json eval
exact({ cursor => "", enrollments => sub {
    my ($e) = @_;
    my @ids = sort map { $_->{id} } @$e;
    Test::More::is_deeply(\@ids, [ sort((map { sprintf "LIST-D%02d", $_ } 1 .. 12),
                                        "LIST-D01:LIST-U1", "LIST-D02:LIST-U2",
                                        "LIST-UE", "LIST-UE:EU") ], "all 16 enrollments, once");
    my ($d1) = grep { $_->{id} eq "LIST-D01" } @$e;
    Test::More::ok(!json_diff($d1, { type => "Device", enabled => JSON::PP::true,
        serial_number => "SN1", last_seen => num(1700000001000),
        has_push_token => JSON::PP::true, has_unlock_token => JSON::PP::true,
        has_bootstrap_token => JSON::PP::true, token => absent(), push_magic => absent(),
        unlock_token => absent(), bootstrap_token => absent(), queue_length => absent() }),
        "an item: fields, booleans and numbers, no secrets");
    Test::More::unlike($::JBody, qr/MAGIC-SECRET|VU5MT0NL|Qk9PVA==|abababab/,
                       "no token in the listing");
    1 } })



=== TEST 64: GET /v1/enrollments: walking small pages until the cursor is "" visits every enrollment
--- request
GET /v1/enrollments?count=2
--- error_code: 200
--- json eval
{ cursor => sub {
    my $cursor = $_[0];
    my @ids = map { $_->{id} } @{ $::J->{enrollments} };
    my $pages = 1;
    while ($cursor ne "" && $pages < 100) {
        my $r = api("GET", "/v1/enrollments?count=2&cursor=$cursor");
        Test::More::is($r->{status}, 200, "page $pages") or last;
        push @ids, map { $_->{id} } @{ $r->{json}{enrollments} };
        $cursor = $r->{json}{cursor};
        Test::More::like($cursor, qr/^(|[1-9]\d*)$/, "cursor is \"\" or a number");
        $pages++;
    }
    Test::More::cmp_ok($pages, '>', 1, "several pages ($pages)");
    # SCAN may return a key twice if Redis resizes its table meanwhile, so
    # this asks for every enrollment and nothing else, not for exactly once.
    my %seen;
    $seen{$_}++ for @ids;
    Test::More::is_deeply([ sort keys %seen ],
        [ sort((map { sprintf "LIST-D%02d", $_ } 1 .. 12), "LIST-D01:LIST-U1",
               "LIST-D02:LIST-U2", "LIST-UE", "LIST-UE:EU") ],
        "every enrollment, and only enrollments");
    1 } }



=== TEST 65: GET /v1/enrollments filters: type, enabled, last_seen_after, together
--- request eval
[ "GET /v1/enrollments?count=1000&type=Device",
  "GET /v1/enrollments?count=1000&type=User",
  "GET /v1/enrollments?count=1000&enabled=0",
  "GET /v1/enrollments?count=1000&enabled=1&type=User",
  "GET /v1/enrollments?count=1000&last_seen_after=1700000010000",
  "GET /v1/enrollments?count=1000&last_seen_after=1700000010000&enabled=1",
  "GET /v1/enrollments?count=1000&type=Nothing" ]
--- error_code eval
[ (200) x 7 ]
--- json eval
my $ids = sub { my @want = sort @_; sub { my @got = sort map { $_->{id} } @{ $_[0] };
    "@got" eq "@want" or do { Test::More::diag("got @got"); 0 } } };
[ { enrollments => $ids->(map { sprintf "LIST-D%02d", $_ } 1 .. 12) },
  { enrollments => $ids->("LIST-D01:LIST-U1", "LIST-D02:LIST-U2") },
  { enrollments => $ids->("LIST-D03", "LIST-D06", "LIST-D09", "LIST-D12", "LIST-D02:LIST-U2") },
  { enrollments => $ids->("LIST-D01:LIST-U1") },
  { enrollments => $ids->("LIST-D11", "LIST-D12") },
  { enrollments => $ids->("LIST-D11") },
  exact({ enrollments => [], cursor => "" }) ]



=== TEST 66: GET /v1/enrollments?type= with a URL-encoded space ("User Enrollment")
--- request eval
[ "GET /v1/enrollments?count=1000&type=User%20Enrollment",
  "GET /v1/enrollments?count=1000&type=User%20Enrollment%20(Device)" ]
--- error_code eval
[ 200, 200 ]
--- json eval
[ { enrollments => [ { id => "LIST-UE:EU" } ] },
  { enrollments => [ { id => "LIST-UE" } ] } ]



=== TEST 67: GET /v1/enrollments: bad parameters 400, other methods 405
--- request eval
[ map({ "GET /v1/enrollments?$_" } "count=0", "count=1001", "count=ten", "count=-1",
      "cursor=abc", "cursor=-1", "enabled=2", "enabled=true", "last_seen_after=yesterday"),
  "POST /v1/enrollments\nx", "DELETE /v1/enrollments" ]
--- error_code eval
[ (400) x 9, 405, 405 ]
--- json eval
[ (exact({ error => "cursor and last_seen_after are numbers, count 1 to 1000, enabled 0 or 1" })) x 9,
  (exact({ error => "enrollments takes GET" })) x 2 ]



=== TEST 68: unknown endpoints: 404 JSON
--- request eval
[ "GET /v1/nothing", "GET /v1/", "GET /v1/enrollment/X", "GET /v1/queue/A/B/C",
  "PUT /v1/escrowkeyunlock\nx", "GET /admin/v2/version/x" ]
--- error_code eval
[ (404) x 6 ]
--- json eval
[ (exact({ error => "unknown endpoint" })) x 6 ]
--- no_error_log
[error]



=== TEST 69: Redis down: 503 JSON for every endpoint that needs it, with a log line
--- redis_setup eval
sub { redis_stop() }
--- request eval
[ "GET /v1/enrollments/ENQ-1", "PUT /v1/enqueue/ENQ-1\n" . cmd_plist("ProfileList", "DOWN-1"),
  "GET /v1/push/ENQ-1", "DELETE /v1/queue/ENQ-1" ]
--- error_code eval
[ 503, 503, 503, 503 ]
--- json eval
# a request that comes while nginx's reconnect is in flight waits for it and
# fails with the connect's own error
[ (exact({ error => sub { $_[0] =~ /^redis (is not connected|Connection refused)$/ } })) x 4 ]
--- error_log eval
qr/mdm: API request answered 503: redis (is not connected|Connection refused)/



=== TEST 70: Redis down: /version does not need it
--- redis_setup eval
sub { redis_stop() }
--- request
GET /version
--- error_code: 200
--- json eval
exact({ version => "0.1.0" })
--- no_error_log
API request answered



=== TEST 71: Redis back (empty): the API works again
(t::MDM restarts Redis before each block, and nginx starts afresh.)
--- request
GET /v1/enrollments?count=1000
--- error_code: 200
--- json eval
exact({ enrollments => [], cursor => "" })
--- no_error_log
[error]



=== TEST 72: keep-alive: a refused request with a body does not poison the connection
--- pipelined_requests eval
[ "PUT /v1/enqueue/ENQ-1\n" . cmd_plist("ProfileList", "KA-1"),
  "GET /version" ]
--- more_headers eval
[ "Authorization: Basic " . MIME::Base64::encode_base64("nanomdm:wrong", ""), $::AUTH ]
--- error_code eval
[ 401, 200 ]
--- json eval
[ { error => qr/credentials/ }, { version => "0.1.0" } ]



=== TEST 73: keep-alive: after a 405 to a request with a body, the next request is still understood
--- pipelined_requests eval
[ "DELETE /v1/enqueue/ENQ-1\n" . cmd_plist("ProfileList", "KA-2"),
  "GET /version" ]
--- error_code eval
[ 405, 200 ]
--- json eval
[ { error => qr/PUT or POST/ }, { version => "0.1.0" } ]



=== TEST 74: keep-alive: after 404s to requests with bodies (from the router, then from dispatch), the next request is still understood
--- pipelined_requests eval
[ "PUT /v1/queue/A/B/C\n" . cmd_plist("ProfileList", "KA-3"),
  "POST /v1/nothing\n" . cmd_plist("ProfileList", "KA-4"),
  "GET /version" ]
--- error_code eval
[ 404, 404, 200 ]
--- json eval
[ { error => "unknown endpoint" }, { error => "unknown endpoint" }, { version => "0.1.0" } ]



=== TEST 75: an enrollment bound by an earlier version (mdm:certs:{ID}), not migrated yet, shows its certificates
--- redis_setup eval
[ [ "HSET", "mdm:enr:{OLD-DEV}", "type", "Device", "enabled", "1" ],
  [ "HSET", "mdm:certs:{OLD-DEV}", "a" x 64, "1900000000", "b" x 64, "1800000000" ] ]
--- request
GET /v1/enrollments/OLD-DEV
--- error_code: 200
--- json eval
all_of({ id => "OLD-DEV", udid => "OLD-DEV", cert_hash => "a" x 64,
         cert_not_after => num(1900000000),
         certificates => { "a" x 64 => num(1900000000), "b" x 64 => num(1800000000) } })
