# Bad check-in requests: each one gets a clear 4xx (never 401, which makes
# a device unenroll), exactly one [error] line
#     mdm: <MessageType, or "request" before it is known> from enrollment
#     "<id, or - before it is known>" answered <status>: <reason>
# (plus, for a key, one line naming it), nothing in Redis, and the server
# keeps working.
#
# Conventions of this file (see the preprocessor and the check below):
#   * Every block starts with an empty Redis (FLUSHALL), unless it has
#     `--- keep_redis`, so `DBSIZE => 0` proves a rejected message wrote
#     nothing.
#   * `--- grep_error_log_out` without `--- grep_error_log` lists every
#     [error] line of the block, without the "client: ..." tail.
#   * After the last response of a block, a good signed Authenticate (device
#     FOLLOW-UP-1) must get 200: the worker is alive and still serves. Skip
#     it with `--- no_follow_up`.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

no_shuffle();

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
            mdm_store_authenticate on;
        }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $MACUSER = 'A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883';
our $AUTH = 'nanomdm/mdm/testdata/Authenticate.2.plist';
our $TOKEN = 'nanomdm/mdm/testdata/TokenUpdate.2.plist';
our $USER_TOKEN = 'commandment/testdata/TokenUpdate/10.12.2-user.xml';
our $CHECKOUT = 'commandment/testdata/CheckOut/10.11.x.xml';

# The text of an [error] line between "pid#tid: *conn " and ", client: ...".
our $ERR = qr/\[error\] \d+#\d+: (?:\*\d+ )?\K.*?(?=, client: |$)/;

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->keep_redis) {
        my $setup = $block->redis_setup;
        if (!defined $setup) {
            $block->set_value(redis_setup => "FLUSHALL\n");
        } elsif (ref $setup eq 'ARRAY') {
            $block->set_value(redis_setup => [ ['FLUSHALL'], @$setup ]);
        } elsif (!ref $setup) {
            $block->set_value(redis_setup => "FLUSHALL\n$setup");
        }
    }

    $block->set_value(grep_error_log => $ERR)
        if defined $block->grep_error_log_out
           && !defined $block->grep_error_log;
});

# A good check-in right after the block: the worker survived and serves.
add_response_body_check(sub {
    my ($block, $body, $req_idx, $rep, $dry) = @_;
    return if $dry || defined $block->no_follow_up;

    my $r = $block->request;
    my $n = ref $r eq 'ARRAY' ? @$r : 1;
    return unless $req_idx == $n - 1;

    my $msg = plist_set(vector($AUTH), UDID => 'FOLLOW-UP-1');
    my $req = http_request('PUT', '/mdm/checkin', $msg, [
        'Content-Type' => $t::MDM::CheckinType,
        'Mdm-Signature' => mdm_signature($msg, 'follow'),
    ]);
    my $res = concurrent_requests(server_port_for_client(), [$req],
                                  timeout => 5)->[0];
    Test::More::is($res->{status}, 200,
                   $block->name . " - a good check-in right after gets 200")
        or Test::More::diag("error: " . ($res->{error} // '-'));
});

# A binary plist (bplist00) of one flat dict. Values: a string, \1 / \0 for
# booleans, [data => BYTES] for data.
sub bplist {
    my @pairs = @_;
    my $head = sub {
        my ($type, $len) = @_;
        return chr($type | $len) if $len < 15;
        return chr($type | 0x0F)
               . ($len < 256 ? "\x10" . chr($len) : "\x11" . pack('n', $len));
    };
    my $n = @pairs / 2;
    my @obj = ($head->(0xD0, $n) . join '', map { chr(1 + $_) } 0 .. 2 * $n - 1);
    my @keys = @pairs[grep { $_ % 2 == 0 } 0 .. $#pairs];
    my @vals = @pairs[grep { $_ % 2 == 1 } 0 .. $#pairs];
    push @obj, $head->(0x50, length $_) . $_ for @keys;
    for my $v (@vals) {
        push @obj, ref $v eq 'SCALAR' ? ($$v ? "\x09" : "\x08")
                 : ref $v eq 'ARRAY' ? $head->(0x40, length $v->[1]) . $v->[1]
                 : $head->(0x50, length $v) . $v;
    }
    my ($out, @off) = ('bplist00');
    for (@obj) { push @off, length $out; $out .= $_ }
    my $table = length $out;
    $out .= pack('n', $_) for @off;
    return $out . "\0" x 6 . "\x02\x01" . pack('Q>Q>Q>', scalar @obj, 0, $table);
}

# Authenticate.2.plist as a binary plist.
sub binary_authenticate {
    my $xml = vector($AUTH);
    return bplist(
        map({ ($_ => plist_get($xml, $_)) }
            qw(BuildVersion DeviceName MessageType Model ModelName OSVersion
               ProductName SerialNumber Topic UDID)),
        Challenge => [ data => 'apple' ],
    );
}

# A binary plist of $depth arrays, each holding the next (2-byte object
# references, 3-byte offsets).
sub nested_bplist {
    my ($depth) = @_;
    my @obj = ((map { "\xA1" . pack('n', $_ + 1) } 0 .. $depth - 2), "\xA0");
    my ($out, @off) = ('bplist00');
    for (@obj) { push @off, length $out; $out .= $_ }
    my $table = length $out;
    $out .= substr(pack('N', $_), 1) for @off;
    return $out . "\0" x 6 . "\x03\x02" . pack('Q>Q>Q>', scalar @obj, 0, $table);
}

# A binary plist whose root dict holds itself: { A => <root> }.
sub cyclic_bplist {
    my @obj = ("\xD1\x01\x00", "\x51A");
    my ($out, @off) = ('bplist00');
    for (@obj) { push @off, length $out; $out .= $_ }
    my $table = length $out;
    $out .= chr($_) for @off;
    return $out . "\0" x 6 . "\x01\x01" . pack('Q>Q>Q>', scalar @obj, 0, $table);
}

run_tests();

__DATA__

=== TEST 1: GET is 405
--- request
GET /mdm/checkin
--- error_code: 405
--- grep_error_log_out
mdm: request from enrollment "-" answered 405: method is not PUT
--- redis_check
DBSIZE => 0



=== TEST 2: POST of a real, signed Authenticate is 405
--- request eval
checkin_request($::AUTH) =~ s/^PUT/POST/r
--- signed_by: mac
--- error_code: 405
--- grep_error_log_out
mdm: request from enrollment "-" answered 405: method is not PUT
--- redis_check
DBSIZE => 0



=== TEST 3: DELETE is 405
--- request eval
checkin_request($::AUTH) =~ s/^PUT/DELETE/r
--- signed_by: mac
--- error_code: 405
--- grep_error_log_out
mdm: request from enrollment "-" answered 405: method is not PUT
--- redis_check
DBSIZE => 0



=== TEST 4: no Content-Type is 415
--- no_defaults
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 415
--- grep_error_log_out
mdm: request from enrollment "-" answered 415: Content-Type is not application/x-apple-aspen-mdm-checkin
--- redis_check
DBSIZE => 0



=== TEST 5: the command channel's Content-Type is 415
--- more_headers
Content-Type: application/x-apple-aspen-mdm
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 415
--- grep_error_log_out
mdm: request from enrollment "-" answered 415: Content-Type is not application/x-apple-aspen-mdm-checkin
--- redis_check
DBSIZE => 0



=== TEST 6: text/xml is 415
--- more_headers
Content-Type: text/xml
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 415
--- grep_error_log_out
mdm: request from enrollment "-" answered 415: Content-Type is not application/x-apple-aspen-mdm-checkin
--- redis_check
DBSIZE => 0



=== TEST 7: a longer media type that merely starts with the check-in type is 415
--- more_headers
Content-Type: application/x-apple-aspen-mdm-checkin-evil
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 415
--- grep_error_log_out
mdm: request from enrollment "-" answered 415: Content-Type is not application/x-apple-aspen-mdm-checkin
--- redis_check
DBSIZE => 0



=== TEST 8: a Content-Type with parameters is accepted
--- more_headers
Content-Type: application/x-apple-aspen-mdm-checkin; charset=UTF-8
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{$::MAC} type", "Device" ] ]
--- no_error_log
[error]



=== TEST 9: media types are case-insensitive
--- more_headers
Content-Type: Application/X-Apple-Aspen-MDM-Checkin
--- request eval
checkin_request($::AUTH)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]



=== TEST 10: a body over client_max_body_size is 413 (nginx's own check)
--- config
location = /mdm/checkin {
    client_max_body_size 1k;
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- request eval
"PUT /mdm/checkin\n" . ("x" x 4096)
--- error_code: 413
--- grep_error_log_out
client intended to send too large body: 4096 bytes
--- redis_check
DBSIZE => 0



=== TEST 11: a chunked body over client_max_body_size is 413 too
--- config
location = /mdm/checkin {
    client_max_body_size 1k;
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- more_headers
Content-Type: application/x-apple-aspen-mdm-checkin
Transfer-Encoding: chunked
--- request eval
"PUT /mdm/checkin\n" . ("400\r\n" . ("x" x 1024) . "\r\n") x 4 . "0\r\n\r\n"
--- error_code: 413
--- grep_error_log_out eval
qr/\Aclient intended to send too large chunked body: \d+\+\d+ bytes\n\z/
--- redis_check
DBSIZE => 0



=== TEST 12: a signed Authenticate sent chunked (in two chunks) is served
--- more_headers eval
my $body = vector($::AUTH);
"Content-Type: $t::MDM::CheckinType\nTransfer-Encoding: chunked\n"
. "Mdm-Signature: " . mdm_signature($body, "mac")
--- request eval
my $body = vector($::AUTH);
my ($a, $b) = (substr($body, 0, 300), substr($body, 300));
"PUT /mdm/checkin\n" . sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n",
                               length $a, $a, length $b, $b)
--- error_code: 200
--- redis_check eval
[ [ "GET mdm:auth:{$::MAC}", vector($::AUTH) ] ]
--- no_error_log
[error]



=== TEST 13: Authenticate (iOS), for the next test
--- request eval
checkin_request("nanomdm/mdm/testdata/Authenticate.1.plist")
--- signed_by: ios
--- error_code: 200
--- no_error_log
[error]



=== TEST 14: a body over client_body_buffer_size goes to a temp file and is served
--- keep_redis
--- config
location = /mdm/checkin {
    client_body_buffer_size 1k;
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- request eval
# the body as a second packet: not pre-read with the headers
my $req = checkin_request("nanomdm/mdm/testdata/TokenUpdate.1.plist",
    UDID => plist_get(vector("nanomdm/mdm/testdata/Authenticate.1.plist"), "UDID"));
my $nl = index($req, "\n") + 1;
[ [ substr($req, 0, $nl), substr($req, $nl) ] ]
--- raw_request_middle_delay: 0.1
--- signed_by: ios
--- error_code: 200
--- redis_check eval
my $id = plist_get(vector("nanomdm/mdm/testdata/Authenticate.1.plist"), "UDID");
my $unlock = plist_get(vector("nanomdm/mdm/testdata/TokenUpdate.1.plist"), "UnlockToken") =~ s/\s+//gr;
[
  [ "HGET mdm:enr:{$id} enabled", "1" ],
  [ "HGET mdm:enr:{$id} unlock_token", $unlock ],
]
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 15: no body is 400
--- request
PUT /mdm/checkin
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: empty body
--- redis_check
DBSIZE => 0



=== TEST 16: Content-Length: 0 is 400
--- more_headers
Content-Type: application/x-apple-aspen-mdm-checkin
Content-Length: 0
--- request
PUT /mdm/checkin
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: empty body
--- redis_check
DBSIZE => 0



=== TEST 17: garbage is 400
--- request
PUT /mdm/checkin
this is not a property list at all
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is not an XML plist dictionary
--- redis_check
DBSIZE => 0



=== TEST 18: truncated XML is 400
--- request eval
substr(checkin_request($::AUTH), 0, 400)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has unclosed elements
--- redis_check
DBSIZE => 0



=== TEST 19: a plist whose root is an array is 400
--- request
PUT /mdm/checkin
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<array><string>Authenticate</string><string>66ADE930-5FDF-5EC4-8429-15640684C489</string></array>
</plist>
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is not an XML plist dictionary
--- redis_check
DBSIZE => 0



=== TEST 20: a plist whose root is a string is 400
--- request
PUT /mdm/checkin
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><string>Authenticate</string></plist>
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is not an XML plist dictionary
--- redis_check
DBSIZE => 0



=== TEST 21: a binary plist is refused: the protocol is XML, and libplist's binary parser is quadratic in nesting depth
--- more_headers eval
"Content-Length: " . length(::binary_authenticate())
--- request eval
"PUT /mdm/checkin\n" . ::binary_authenticate()
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is a binary plist: only XML plists are accepted
--- redis_check
DBSIZE => 0



=== TEST 22: a truncated binary plist is 400
--- more_headers eval
"Content-Length: " . (length(::binary_authenticate()) - 20)
--- request eval
"PUT /mdm/checkin\n" . substr(::binary_authenticate(), 0, -20)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is a binary plist: only XML plists are accepted
--- redis_check
DBSIZE => 0



=== TEST 23: 100000 nested arrays do not crash the worker
--- request eval
"PUT /mdm/checkin\n<?xml version=\"1.0\"?><plist version=\"1.0\">"
. ("<array>" x 100000) . ("</array>" x 100000) . "</plist>"
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body nests deeper than 128 elements
--- no_error_log
[alert]
[crit]
--- redis_check
DBSIZE => 0



=== TEST 24: 300000 unclosed nested arrays (2.1 MB) do not crash the worker
--- request eval
# libplist recurses per level (parsing, and freeing the partial tree): about
# 200000 levels overflow the 8 MB stack. nginx's default client_max_body_size
# (1m) stops this depth; the harness's 30M does not, nor might a site's.
"PUT /mdm/checkin\n<?xml version=\"1.0\"?><plist version=\"1.0\">" . ("<array>" x 300000)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body nests deeper than 128 elements
--- no_error_log
[alert]
[crit]
--- redis_check
DBSIZE => 0



=== TEST 25: a binary plist that contains itself is 400
--- more_headers eval
"Content-Length: " . length(::cyclic_bplist())
--- request eval
"PUT /mdm/checkin\n" . ::cyclic_bplist()
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is a binary plist: only XML plists are accepted
--- redis_check
DBSIZE => 0



=== TEST 26: a binary plist nested 40000 deep (240 KB) is answered at once
--- more_headers eval
# libplist 2.2 checks each binary node against every ancestor: quadratic time
# in the depth, in the worker's event loop
"Content-Length: " . length(::nested_bplist(40000))
--- request eval
"PUT /mdm/checkin\n" . ::nested_bplist(40000)
--- timeout: 1.5
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is a binary plist: only XML plists are accepted
--- redis_check
DBSIZE => 0



=== TEST 27: no MessageType is 400
--- request eval
checkin_request($::AUTH, MessageType => undef)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: no MessageType string (or not a word)
--- redis_check
DBSIZE => 0



=== TEST 28: a MessageType that is not a string is 400
--- request eval
checkin_request($::AUTH, MessageType => \'<integer>1</integer>')
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: no MessageType string (or not a word)
--- redis_check
DBSIZE => 0



=== TEST 29: an empty MessageType is 400
--- request eval
checkin_request($::AUTH, MessageType => "")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: no MessageType string (or not a word)
--- redis_check
DBSIZE => 0



=== TEST 30: an unknown MessageType is 400
--- request eval
checkin_request($::AUTH, MessageType => "Acknowledge")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: Acknowledge from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: unknown MessageType
--- redis_check
DBSIZE => 0



=== TEST 31: an unknown MessageType with a newline cannot forge a second log line
--- request eval
checkin_request($::AUTH, MessageType => "Bogus\n2030/01/01 00:00:00 [error] 1#1: forged")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out eval
qr/\Amdm: .* answered 400: no MessageType string \(or not a word\)\n\z/
--- no_error_log
forged
--- redis_check
DBSIZE => 0



=== TEST 32: nor through the MessageType of a message rejected for its UDID
--- request eval
checkin_request($::AUTH, UDID => undef,
    MessageType => "Authenticate\n2030/01/01 00:00:00 [error] 1#1: forged")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out eval
qr/\Amdm: .* answered 400: neither UDID nor EnrollmentID in the message\n\z/
--- no_error_log
forged
--- redis_check
DBSIZE => 0



=== TEST 33: neither UDID nor EnrollmentID is 400
--- request eval
checkin_request($::AUTH, UDID => undef)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: Authenticate from enrollment "-" answered 400: neither UDID nor EnrollmentID in the message
--- redis_check
DBSIZE => 0



=== TEST 34: an empty UDID counts as none
--- request eval
checkin_request($::AUTH, UDID => "")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: Authenticate from enrollment "-" answered 400: neither UDID nor EnrollmentID in the message
--- redis_check
DBSIZE => 0



=== TEST 35: a UDID with a slash is 400
--- request eval
checkin_request($::AUTH, UDID => "66ADE930/5FDF")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: Authenticate from enrollment "-" answered 400: enrollment id has characters outside [A-Za-z0-9._@+-] or is longer than 128
--- redis_check
DBSIZE => 0



=== TEST 36: a UDID with Redis hash-tag braces and the id separator is 400
--- request eval
checkin_request($::AUTH, UDID => "x}:{y")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: Authenticate from enrollment "-" answered 400: enrollment id has characters outside [A-Za-z0-9._@+-] or is longer than 128
--- redis_check
DBSIZE => 0



=== TEST 37: a UDID of 129 characters is 400
--- request eval
checkin_request($::AUTH, UDID => "A" x 129)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: Authenticate from enrollment "-" answered 400: enrollment id has characters outside [A-Za-z0-9._@+-] or is longer than 128
--- redis_check
DBSIZE => 0



=== TEST 38: a UDID of 128 characters (every allowed kind) is fine
--- request eval
checkin_request($::AUTH, UDID => "aZ09._\@+-" . ("A" x 119))
--- signed_by: long
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{aZ09._\@+-" . ("A" x 119) . "} type", "Device" ] ]
--- no_error_log
[error]



=== TEST 39: a UDID that is not a string is 400
--- request eval
checkin_request($::AUTH, UDID => \'<integer>42</integer>')
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: Authenticate from enrollment "-" answered 400: an id key is not a string
--- redis_check
DBSIZE => 0



=== TEST 40: a UserID with a space is 400
--- request eval
checkin_request($::USER_TOKEN, UDID => $::MAC, UserID => "A522C2FB D0BA")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: TokenUpdate from enrollment "-" answered 400: enrollment id has characters outside [A-Za-z0-9._@+-] or is longer than 128
--- redis_check
DBSIZE => 0



=== TEST 41: TokenUpdate without Token is 400 and names the key
--- request eval
checkin_request($::TOKEN, Token => undef)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: required key "Token" is missing
mdm: TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a required key is missing
--- redis_check
DBSIZE => 0



=== TEST 42: TokenUpdate without PushMagic is 400
--- request eval
checkin_request($::TOKEN, PushMagic => undef)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: required key "PushMagic" is missing
mdm: TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a required key is missing
--- redis_check
DBSIZE => 0



=== TEST 43: TokenUpdate without Topic is 400
--- request eval
checkin_request($::TOKEN, Topic => undef)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: required key "Topic" is missing
mdm: TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a required key is missing
--- redis_check
DBSIZE => 0



=== TEST 44: TokenUpdate with an empty Token is 400 (missing)
--- request eval
checkin_request($::TOKEN, Token => \'<data></data>')
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: required key "Token" is missing
mdm: TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a required key is missing
--- redis_check
DBSIZE => 0



=== TEST 45: Authenticate without Topic is 400
--- request eval
checkin_request($::AUTH, Topic => undef)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: required key "Topic" is missing
mdm: Authenticate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a required key is missing
--- redis_check
DBSIZE => 0



=== TEST 46: CheckOut without Topic is 400
--- request eval
checkin_request($::CHECKOUT, UDID => $::MAC, Topic => undef)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: required key "Topic" is missing
mdm: CheckOut from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a required key is missing
--- redis_check
DBSIZE => 0



=== TEST 47: a Token given as <string> is 400
--- request eval
checkin_request($::TOKEN, Token => "G6fJAGbFD3domiTzpCXK9oowD3KeiORgqUFgItXWQsw=")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: key "Token" has the wrong type
mdm: TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a key has the wrong type
--- redis_check
DBSIZE => 0



=== TEST 48: an optional key of the wrong type is 400 too
--- request eval
checkin_request($::TOKEN, AwaitingConfiguration => "false")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: key "AwaitingConfiguration" has the wrong type
mdm: TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a key has the wrong type
--- redis_check
DBSIZE => 0



=== TEST 49: a Topic given as <integer> is 400
--- request eval
checkin_request($::AUTH, Topic => \'<integer>7</integer>')
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: key "Topic" has the wrong type
mdm: Authenticate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: a key has the wrong type
--- redis_check
DBSIZE => 0



=== TEST 50: Authenticate on a user channel is 400
--- request eval
checkin_request($::AUTH, UserID => $::MACUSER)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: Authenticate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883" answered 400: this message type is for the device channel only
--- redis_check
DBSIZE => 0



=== TEST 51: CheckOut on a user channel is 400
--- request eval
checkin_request($::CHECKOUT, UDID => $::MAC, UserID => $::MACUSER)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: CheckOut from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883" answered 400: this message type is for the device channel only
--- redis_check
DBSIZE => 0



=== TEST 52: UserAuthenticate without UserID is 400
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_user_authenticate allow;
}
--- request eval
checkin_request($::AUTH, MessageType => "UserAuthenticate", Topic => undef)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: UserAuthenticate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: this message type is for a user channel only
--- redis_check
DBSIZE => 0



=== TEST 53: TokenUpdate from a device that never sent Authenticate is 400
--- request eval
checkin_request($::TOKEN)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: unknown enrollment: no Authenticate for device 66ADE930-5FDF-5EC4-8429-15640684C489
--- redis_check eval
[ [ "EXISTS mdm:enr:{$::MAC}", "0" ], [ "XLEN mdm:events", "0" ], [ "DBSIZE", "0" ] ]



=== TEST 54: a user-channel TokenUpdate from an unknown device is 400
--- request eval
checkin_request($::USER_TOKEN, UDID => $::MAC)
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: TokenUpdate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883" answered 400: unknown enrollment: no Authenticate for device 66ADE930-5FDF-5EC4-8429-15640684C489
--- redis_check
DBSIZE => 0



=== TEST 55: no Mdm-Signature is 400
--- request eval
checkin_request($::AUTH)
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: no device certificate: no Mdm-Signature header, TLS client certificate or certificate header
--- redis_check
DBSIZE => 0



=== TEST 56: an Mdm-Signature that is not base64 is 400
--- more_headers
Content-Type: application/x-apple-aspen-mdm-checkin
Mdm-Signature: %%%not base64%%%
--- request eval
checkin_request($::AUTH)
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: Mdm-Signature is not base64
--- redis_check
DBSIZE => 0



=== TEST 57: an Mdm-Signature over another body is 400
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nMdm-Signature: "
. mdm_signature(vector($::TOKEN), "mac")
--- request eval
checkin_request($::AUTH)
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: Mdm-Signature does not match the body
--- redis_check
DBSIZE => 0
