# Untrusted input (issue 9 #3): what a body can make the XML parser do.
#
#   * The device identity is verified on the raw bytes before the plist is
#     parsed: an unsigned or badly signed body is refused with the identity's
#     reason, never the parser's.
#   * The nesting pre-scan reads markup as XML does (whitespace and attributes
#     in tags, comments, CDATA, processing instructions, DOCTYPE): nothing
#     nests deeper than 128 elements, and what it cannot classify is refused.
#   * At most mdm_plist_max_nodes pieces of markup (default 100000) reach
#     libplist, and character references cannot make it quadratic.
#
# Every refusal is one [error] line; the worker survives (no signal in the
# log) and serves the good check-in that follows each block.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

no_shuffle();

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        location = /mdm/checkin {
            client_max_body_size 4m;
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        }

        location = /off/checkin {
            client_max_body_size 4m;
            mdm_checkin;
            mdm_identity off;
            mdm_cert_auth off;
        }

        location = /small/checkin {
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
            mdm_plist_max_nodes 20;
        }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $AUTH = 'nanomdm/mdm/testdata/Authenticate.2.plist';

our $HEAD = qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">};

# The text of an [error] line between "pid#tid: *conn " and ", client: ...".
our $ERR = qr/\[error\] \d+#\d+: (?:\*\d+ )?\K.*?(?=, client: |$)/;

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value(redis_setup => "FLUSHALL\n")
        unless defined $block->redis_setup;

    $block->set_value(grep_error_log => $ERR)
        if defined $block->grep_error_log_out
           && !defined $block->grep_error_log;

    # a crashed worker is logged by the master at [alert]
    $block->set_value(no_error_log => "exited on signal\n[alert]\n[crit]")
        unless defined $block->no_error_log || defined $block->must_die;
});

# After the block: a good signed check-in on a fresh connection gets 200,
# so the worker that parsed the body is alive and serving.
add_response_body_check(sub {
    my ($block, $body, $req_idx, $rep, $dry) = @_;
    return if $dry || defined $block->no_follow_up;

    my $r = $block->request;
    return unless $req_idx == (ref $r eq 'ARRAY' ? @$r : 1) - 1;

    my $msg = plist_set(vector($AUTH), UDID => 'INPUT-FOLLOW-UP');
    my $req = http_request('PUT', '/mdm/checkin', $msg, [
        'Content-Type' => $t::MDM::CheckinType,
        'Mdm-Signature' => mdm_signature($msg, 'input-follow'),
    ]);
    my $res = concurrent_requests(server_port_for_client(), [$req],
                                  timeout => 10)->[0];
    Test::More::is($res->{status}, 200,
                   $block->name . " - a good check-in right after gets 200")
        or Test::More::diag("error: " . ($res->{error} // '-'));
});

# --- max_hwm_growth_kb: N
# The worker's peak RSS (VmHWM) may grow by at most N KB between the end of
# the block's first request and the end of its last one.
our $Hwm;
sub worker_hwm_kb {
    open my $fh, '<', $Test::Nginx::Socket::PidFile or return undef;
    my ($pid) = <$fh> =~ /(\d+)/;
    # with master_process on, its worker; else nginx itself
    if (open my $ch, '<', "/proc/$pid/task/$pid/children") {
        my ($child) = split ' ', (<$ch> // '');
        $pid = $child if $child;
    }
    open my $st, '<', "/proc/$pid/status" or return undef;
    while (<$st>) { return $1 if /^VmHWM:\s+(\d+) kB/ }
    return undef;
}

add_response_body_check(sub {
    my ($block, $body, $req_idx, $rep, $dry) = @_;
    return if $dry || !defined $block->max_hwm_growth_kb;

    my $r = $block->request;
    my $n = ref $r eq 'ARRAY' ? @$r : 1;

    if ($req_idx == 0) {
        $Hwm = worker_hwm_kb();
    } elsif ($req_idx == $n - 1) {
        my $now = worker_hwm_kb();
        Test::More::ok(defined $Hwm && defined $now,
                       $block->name . " - VmHWM of the worker read")
            or return;
        Test::More::cmp_ok($now - $Hwm, '<=', $block->max_hwm_growth_kb,
                           $block->name . " - peak RSS grew by "
                           . ($now - $Hwm) . " KB");
    }
});

# "PUT URI\n" . body, the form every block here sends
sub put { my ($uri, $body) = @_; return "PUT $uri\n$body" }

# a plist whose root dictionary holds $inner under key "A"
sub dict_with { return "$::HEAD<dict><key>A</key>$_[0]</dict></plist>" }

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(put dict_with);
}

run_tests();

__DATA__

=== TEST 1: 3 MB of "<array >" (a space before ">"): 400 before libplist recurses, the worker lives
--- request eval
# 393216 levels: libplist frees the partial tree recursively, which
# overflowed the worker's stack (signal 11) when only "<array>" was counted
put("/mdm/checkin", $::HEAD . ("<array >" x 393216))
--- signed_by: mac
--- timeout: 20
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body nests deeper than 128 elements



=== TEST 2: closed "<dict\n>" nesting (newline before ">") is counted
--- request eval
put("/mdm/checkin", $::HEAD . ("<dict\n>" x 200) . ("</dict\n>" x 200) . "</plist>")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body nests deeper than 128 elements



=== TEST 3: tags with attributes are counted
--- request eval
put("/mdm/checkin", $::HEAD . ('<array class="x" id="y" >' x 200) . ("</array>" x 200) . "</plist>")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body nests deeper than 128 elements



=== TEST 4: comments between the tags hide nothing
--- request eval
put("/mdm/checkin", $::HEAD . ("<array><!-- x -->\t" x 200) . ("</array >" x 200) . "</plist>")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body nests deeper than 128 elements



=== TEST 5: 129 levels of elements of any name are refused
--- request eval
# <plist>, then dictionaries each holding a <key> and the next one
put("/mdm/checkin", $::HEAD . ("<dict><key>a</key>" x 127) . "<dict/>"
                    . ("</dict>" x 127) . "</plist>")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body nests deeper than 128 elements



=== TEST 6: 128 levels are parsed
--- request eval
put("/mdm/checkin", $::HEAD . ("<dict><key>a</key>" x 126) . "<dict/>"
                    . ("</dict>" x 126) . "</plist>")
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: neither UDID nor EnrollmentID in the message



=== TEST 7: "<array>" inside a comment and "<dict>" inside CDATA are text, not nesting: a real Authenticate with them is served
--- request eval
my $msg = plist_set(vector($::AUTH),
    DeviceName => \('<string><![CDATA[' . ("<dict>" x 300) . ']]></string>'));
$msg =~ s{<dict>}{"<dict><!-- " . ("<array>" x 300) . " -->"}e;
put("/mdm/checkin", $msg)
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]
exited on signal



=== TEST 8: an unterminated comment is refused by the pre-scan
--- request eval
put("/mdm/checkin", dict_with("<string>x</string><!-- " . ("<array>" x 300)))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has an unterminated comment



=== TEST 9: an attribute in single quotes (which libplist reads differently) is refused
--- request eval
put("/mdm/checkin", dict_with(q{<array a='>'><true/></array>}))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has a tag the plist pre-scan cannot classify



=== TEST 10: "<" that starts no markup is refused
--- request eval
put("/mdm/checkin", dict_with("<string>a < b</string>"))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has a tag the plist pre-scan cannot classify



=== TEST 11: a DOCTYPE with an internal subset (entity declarations) is refused
--- request eval
put("/mdm/checkin", qq{<?xml version="1.0"?>\n<!DOCTYPE plist [ <!ENTITY a "b"> ]>\n<plist version="1.0"><dict/></plist>})
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has a DOCTYPE the plist pre-scan cannot classify



=== TEST 12: other <! markup is refused
--- request eval
put("/mdm/checkin", qq{<!ENTITY a "b">$::HEAD<dict/></plist>})
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has <! markup that is not a comment, CDATA or DOCTYPE



=== TEST 13: a processing instruction whose "?>" is quoted is refused (libplist skips quoted text)
--- request eval
put("/mdm/checkin", qq{<?x a="?>" ?>} . dict_with("<true/>"))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has a processing instruction the plist pre-scan cannot classify



=== TEST 14: an end tag without its start tag is refused
--- request eval
put("/mdm/checkin", "</array>" x 10 . dict_with("<true/>"))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has an end tag without a start tag



=== TEST 15: 1 MB of <true/> is refused before libplist allocates it
--- request eval
# 150000 elements: libplist would allocate about 15 MB for them
put("/mdm/checkin", dict_with("<array>" . ("<true/>" x 150000) . "</array>"))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has more than 100000 elements (mdm_plist_max_nodes)



=== TEST 16: 1 MB of <true/> does not raise the worker's peak memory by what libplist would take (15 MB)
--- request eval
[ "GET /mdm/checkin",
  put("/mdm/checkin", dict_with("<array>" . ("<true/>" x 150000) . "</array>")) ]
--- config
# a configuration of its own: a fresh worker, whose peak is not an earlier
# block's
location = /mdm/checkin {
    client_max_body_size 4m;
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_signature_skew 301;
}
--- signed_by eval: [undef, "mac"]
--- max_hwm_growth_kb: 6000
--- error_code eval: [405, 400]



=== TEST 17: comments count against the limit too (each is an allocation in libplist's strings)
--- request eval
put("/mdm/checkin", dict_with("<string>" . ("a<!---->" x 100010) . "</string>"))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has more than 100000 elements (mdm_plist_max_nodes)



=== TEST 18: mdm_plist_max_nodes 20: a real Authenticate (more than 20 elements) is refused, naming the limit
--- request eval
put("/small/checkin", vector($::AUTH))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has more than 20 elements (mdm_plist_max_nodes)



=== TEST 19: mdm_plist_max_nodes 0 does not start
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_plist_max_nodes 0;
}
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*"mdm_plist_max_nodes" directive must be at least 1/



=== TEST 20: 200000 character references in one string are refused at once (libplist decodes them in quadratic time)
--- request eval
put("/mdm/checkin", dict_with("<string>" . ("&#65;" x 200000) . "</string>"))
--- signed_by: mac
--- timeout: 1
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has too many character references (&...;) in long strings



=== TEST 21: a few character references are fine
--- request eval
put("/mdm/checkin", plist_set(vector($::AUTH), DeviceName => "Tom & Jerry's <Mac>"))
--- signed_by: mac
--- error_code: 200
--- no_error_log
[error]



=== TEST 22: an unsigned body is refused for its identity, without being parsed
--- request eval
# the parser would refuse this body with "nests deeper than 128 elements"
put("/mdm/checkin", $::HEAD . ("<array>" x 300000))
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: no device certificate: no Mdm-Signature header, TLS client certificate or certificate header



=== TEST 23: a refused certificate is named by its SHA-256, since the enrollment is not known yet
--- request eval
put("/mdm/checkin", vector($::AUTH))
--- signed_by: input-expired expired
--- error_code: 400
--- grep_error_log_out eval
qq{mdm: request from enrollment "-" answered 400: device certificate has expired (certificate sha256 }
. cert_sha256(device_cert("input-expired", expired => 1)) . ")\n"



=== TEST 24: a body signed over other bytes is refused for its signature, without being parsed
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nMdm-Signature: " . mdm_signature(vector($::AUTH), "mac")
--- request eval
put("/mdm/checkin", dict_with("<array>" . ("<true/>" x 150000) . "</array>"))
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: Mdm-Signature does not match the body



=== TEST 25: an unsigned binary plist is refused for its identity too
--- request eval
put("/mdm/checkin", "bplist00" . ("\0" x 64))
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: no device certificate: no Mdm-Signature header, TLS client certificate or certificate header



=== TEST 26: a signed binary plist is refused: devices send XML
--- request eval
put("/mdm/checkin", "bplist00" . ("\0" x 64))
--- signed_by: mac
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is a binary plist: only XML plists are accepted



=== TEST 27: with mdm_identity off the parser keeps its limits: deep "<array >" nesting
--- request eval
put("/off/checkin", $::HEAD . ("<array >" x 393216))
--- timeout: 20
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body nests deeper than 128 elements



=== TEST 28: with mdm_identity off the parser keeps its limits: 1 MB of <true/>
--- request eval
put("/off/checkin", dict_with("<array>" . ("<true/>" x 150000) . "</array>"))
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body has more than 100000 elements (mdm_plist_max_nodes)
