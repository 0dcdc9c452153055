# The command queue end to end: check-ins, the admin API (mdm_api) and
# command reports (mdm_connect, mdm_server) with real device bodies from
# ../shared/vectors, against NanoMDM's queue semantics (shared/protocol.md
# section 2.3).
#
# Blocks run in order and share Redis: devices enroll in TEST 1 and stay
# enrolled. Requests are built with the helpers below, which also remember
# how each one is sent; a preprocessor turns that into the block's
# more_headers and signed_by, so a block lists only what happens:
#
#   checkin(WHO, VECTOR, Key => value ...)    PUT /mdm/checkin, check-in
#                                             Content-Type, signed by WHO
#   enqueue(IDS, UUID, RequestType, query => "priority=1", xml => "<key>..")
#                                             PUT /v1/enqueue/IDS, API auth
#   report(WHO, Status, UUID, url => "/mdm", vector => ..., set => [..])
#                                             PUT /mdm/connect, signed by WHO
#   api(GET => "queue/ID")                    an API call
#   cmd(UUID)                                 the command plist as enqueued
#   rbody(WHO, Status, UUID ...)              a report body, as report() sends it
#   request_with(TEXT, HEADERS, SIGNER)       any other request
#
# `--- grep_error_log_out` alone lists every [error] and [warn] line of the
# block (the text between "*N " and ", client:"). The harness checks the log
# after every request, so a block that expects log lines has one request.
#
# WHO is an enrollment: mac (device channel), user (its macOS user channel),
# ios, stranger (never enrolled). Reports start from real bodies: Idle and
# NotNow from commandment's NotNow report, Acknowledged from NanoMDM's
# DeviceInformation result (or another result vector), Error from
# commandment's invalid-command report (with ErrorChain), CommandFormatError
# from commandment's iOS one.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Time::HiRes ();

no_shuffle();

# two workers, so racing reports may come through two Redis connections
workers(2);
master_on();

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }
        location = /mdm { mdm_server; }
        location /v1/ { mdm_api; mdm_api_key secret; }
    },
);

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $MACUSER = 'A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883';
our $USER = "$MAC:$MACUSER";
our $IOS = plist_get(vector('nanomdm/mdm/testdata/Authenticate.1.plist'), 'UDID');

our $AUTHN = 'nanomdm/mdm/testdata/Authenticate.2.plist';
our $TOKEN = 'nanomdm/mdm/testdata/TokenUpdate.2.plist';
our $USER_TOKEN = 'commandment/testdata/TokenUpdate/10.12.2-user.xml';
our $CHECKOUT = 'commandment/testdata/CheckOut/10.11.x.xml';
our $PROFILES = 'commandment/testdata/ProfileList/10.11.x.xml';
our $SECINFO = 'commandment/testdata/SecurityInfo/10.11.x.xml';
our $APPS = 'commandment/testdata/InstalledApplicationList/10.11.x.xml';
our $LOCK = 'commandment/testdata/DeviceLock/iOS-11.3.1.xml';

our $API_AUTH = 'Authorization: Basic ' . encode_base64('nanomdm:secret', '');
our $CHECKIN_CT = "Content-Type: $t::MDM::CheckinType";
our $REPORT_CT = 'Content-Type: application/x-apple-aspen-mdm';

# The text of an [error] or [warn] line between "pid#tid: *conn " and
# ", client: ...".
our $LOG = qr/\[(?:error|warn)\] \d+#\d+: (?:\*\d+ )?\K.*?(?=, client: |$)/;

# who signs, and the identity keys of the reports
our %Enr = (
    mac      => { cert => 'mac', keys => [ UDID => $MAC ] },
    user     => { cert => 'mac', keys => [ UDID => $MAC, UserID => $MACUSER,
                                           UserShortName => 'cjoe',
                                           UserLongName => 'Commando Joe' ] },
    ios      => { cert => 'ios', keys => [ UDID => $IOS ] },
    stranger => { cert => 'stranger',
                  keys => [ UDID => '0BADF00D-0000-4000-8000-000000000000' ] },
);

our %ReportVector = (
    Idle               => 'commandment/testdata/NotNow/iOS-11.3.1.xml',
    NotNow             => 'commandment/testdata/NotNow/iOS-11.3.1.xml',
    Acknowledged       => 'nanomdm/mdm/testdata/DeviceInformation.1.plist',
    Error              => 'commandment/testdata/Errors/10.12.5-invalid-command.xml',
    CommandFormatError => 'commandment/testdata/Errors/iOS-11.3.1-CommandFormatError.xml',
);

our %Meta;    # request text -> { headers, signer }
our %Cmd;     # command UUID -> plist as enqueued

sub trimmed { my $s = shift; $s =~ s/^\s+|\s+\z//g; $s }

sub request_with {
    my ($text, $headers, $signer) = @_;
    $Meta{$text} = { headers => $headers, signer => $signer };
    return $text;
}

sub checkin {
    my ($who, $vector, @set) = @_;
    my $e = $Enr{$who} or die "unknown enrollment '$who'";
    my $body = trimmed(plist_set(vector($vector), UDID => $e->{keys}[1], @set));
    return request_with("PUT /mdm/checkin\n$body", $CHECKIN_CT, $e->{cert});
}

sub rbody {
    my ($who, $status, $uuid, %opt) = @_;
    my $e = $Enr{$who} or die "unknown enrollment '$who'";
    my $xml = vector($opt{vector} // $ReportVector{$status}
                     // $ReportVector{Acknowledged});
    return trimmed(plist_set($xml, @{ $e->{keys} }, Status => $status,
                             CommandUUID => $uuid, @{ $opt{set} || [] }));
}

sub report {
    my ($who, $status, $uuid, %opt) = @_;
    my $url = $opt{url} // '/mdm/connect';
    my $ct = exists $opt{ct} ? $opt{ct} : $REPORT_CT;
    return request_with("PUT $url\n" . rbody($who, $status, $uuid, %opt),
                        $ct // '', $Enr{$who}{cert});
}

sub command_plist {
    my ($uuid, $type, $xml) = @_;
    $xml //= '';
    return <<"EOF" =~ s/\n\z//r;
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Command</key>
	<dict>
		<key>RequestType</key>
		<string>$type</string>$xml
	</dict>
	<key>CommandUUID</key>
	<string>$uuid</string>
</dict>
</plist>
EOF
}

sub enqueue {
    my ($ids, $uuid, $type, %opt) = @_;
    my $plist = command_plist($uuid, $type, $opt{xml});
    die "command $uuid enqueued twice with different plists"
        if exists $Cmd{$uuid} && $Cmd{$uuid} ne $plist;
    $Cmd{$uuid} = $plist;
    my $q = defined $opt{query} ? "?$opt{query}" : '';
    return request_with("PUT /v1/enqueue/$ids$q\n$plist", $API_AUTH, undef);
}

sub cmd {
    my ($uuid) = @_;
    return $Cmd{$uuid} // die "cmd($uuid): not enqueued by an earlier block";
}

sub api {
    my ($method, $path) = @_;
    return request_with("$method /v1/$path", $API_AUTH, undef);
}

# Fills more_headers and signed_by from what the helpers recorded, unless the
# block sets them itself.
add_block_preprocessor(sub {
    my $block = shift;

    # `--- grep_error_log_out` alone: every [error] and [warn] line
    $block->set_value(grep_error_log => $LOG)
        if defined $block->grep_error_log_out
           && !defined $block->grep_error_log;

    my $req = $block->request;
    return unless defined $req;
    my @reqs = ref $req eq 'ARRAY' ? @$req : ($req);
    my @meta = map { ref $_ ? undef : $Meta{$_} } @reqs;
    return if grep { !defined } @meta;

    my $many = ref $req eq 'ARRAY';
    if (!defined $block->more_headers) {
        my @h = map { $_->{headers} } @meta;
        $block->set_value(more_headers => $many ? \@h : $h[0]);
    }
    if (!defined $block->signed_by && grep { defined $_->{signer} } @meta) {
        my @s = map { $_->{signer} } @meta;
        $block->set_value(signed_by => $many ? \@s : $s[0]);
    }
});


# ---------------------------------------------------------------------------
# Checks used from `--- after_each eval`
# ---------------------------------------------------------------------------

sub plain_json {
    my ($v) = @_;
    return $v ? 'true' : 'false' if JSON::PP::is_bool($v);
    return [ map { plain_json($_) } @$v ] if ref $v eq 'ARRAY';
    return { map { ($_ => plain_json($v->{$_})) } keys %$v } if ref $v eq 'HASH';
    return $v;
}

sub json_path {
    my ($j, $path) = @_;
    for my $p (split m{/}, $path) {
        return (0) unless defined $j;
        if (ref $j eq 'ARRAY') {
            return (0) unless $p =~ /^\d+\z/ && $p < @$j;
            $j = $j->[$p];
        } elsif (ref $j eq 'HASH') {
            return (0) unless exists $j->{$p};
            $j = $j->{$p};
        } else {
            return (0);
        }
    }
    return (1, $j);
}

# json(PATH => EXPECTED, ...): an after_each hook that decodes the response
# body as JSON and checks each PATH ("a/b/0/c"; "" for the whole document).
# EXPECTED: a string (is), qr// (like), an array or hash ref (is_deeply),
# a coderef (called with the value), or undef (the key must be absent).
# Booleans compare as 'true' / 'false'.
sub json {
    my @spec = @_;
    return sub {
        my ($block, $body, $idx) = @_;
        my $name = $block->name . " - request $idx";
        my $j = eval { plain_json(JSON::PP->new->decode($body)) };
        if (!defined $j) {
            Test::More::fail("$name - the body is JSON: $@");
            Test::More::diag("body: $body");
            return;
        }
        for (my $i = 0; $i < @spec; $i += 2) {
            my ($path, $want) = @spec[$i, $i + 1];
            my $label = "$name - json $path";
            my ($found, $got) = $path eq '' ? (1, $j) : json_path($j, $path);
            if (!defined $want) {
                Test::More::ok(!$found, "$label is absent");
            } elsif (!$found) {
                Test::More::fail("$label exists");
                Test::More::diag("body: $body");
            } elsif (ref $want eq 'Regexp') {
                Test::More::like($got, $want, $label);
            } elsif (ref $want eq 'CODE') {
                Test::More::ok($want->($got), $label)
                    or Test::More::diag("got: " . JSON::PP->new->canonical
                                        ->allow_nonref->encode($got));
            } elsif (ref $want) {
                Test::More::is_deeply($got, $want, $label);
            } else {
                Test::More::is($got, $want, $label);
            }
        }
    };
}

# redis_is([CMD...] => EXPECTED, ...): an after_each hook comparing Redis
# replies mid-block (EXPECTED: string, qr//, arrayref, or undef for nil).
sub redis_is {
    my @spec = @_;
    return sub {
        my ($block, $body, $idx) = @_;
        for (my $i = 0; $i < @spec; $i += 2) {
            my ($cmd, $want) = @spec[$i, $i + 1];
            my $got = redis(@$cmd);
            my $label = $block->name . " - after request $idx: @$cmd";
            if (!defined $want) {
                Test::More::ok(!defined $got, "$label is nil");
            } elsif (ref $want eq 'Regexp') {
                Test::More::like($got, $want, $label);
            } elsif (ref $want) {
                Test::More::is_deeply($got, $want, $label);
            } else {
                Test::More::is($got, $want, $label);
            }
        }
    };
}

sub both { my @subs = @_; sub { $_->(@_) for @subs } }

# the fields of the last $n events of mdm:events, oldest first
sub last_events {
    my ($n) = @_;
    my $r = redis('XREVRANGE', 'mdm:events', '+', '-', 'COUNT', $n);
    return reverse map { +{ @{ $_->[1] } } } @$r;
}


# ---------------------------------------------------------------------------
# Racing reports
# ---------------------------------------------------------------------------

# One request outside the harness, answered before it returns.
sub send_one {
    my ($text) = @_;
    my $meta = $Meta{$text} or die "send_one: not built by a helper";
    my ($line, $body) = split /\n/, $text, 2;
    my ($method, $path) = split ' ', $line;
    my @h = map { split /:\s*/, $_, 2 } grep { length } $meta->{headers};
    push @h, 'Mdm-Signature' => mdm_signature($body, $meta->{signer})
        if defined $meta->{signer};
    return http_request($method, $path, $body, \@h);
}

sub fire {
    my @texts = @_;
    return concurrent_requests(server_port_for_client(),
                               [ map { send_one($_) } @texts ], timeout => 10);
}

# Two reports from one device at once, over and over with fresh commands.
# Each round: enqueue X and Y, Idle (gets X), then two racing reports, sent
# in alternating order. Redis runs them one after the other, in an order we
# read back from the event stream; what each report must get follows from
# that order, and nothing may be lost, counted twice, or delivered after it
# was acknowledged.
#   acks: Ack X and Ack Y. Ack X first: it gets Y, Ack Y gets nothing.
#         Ack Y first: it gets X (still unanswered), Ack X gets nothing.
#   idle: Idle and Ack X. Idle first: it gets X (still unanswered), Ack X
#         gets Y. Ack X first: it gets Y, and so does Idle, never X.
our $Rounds = 8;

sub race {
    my ($block, $kind, $round) = @_;
    my ($x, $y) = map { "RACE-$kind-$round-$_" } qw(X Y);
    my $t = $block->name . " - round $round";

    for my $r (fire(enqueue($MAC, $x, 'ProfileList', query => 'nopush=1')),
               fire(enqueue($MAC, $y, 'SecurityInfo', query => 'nopush=1'))) {
        Test::More::is($r->[0]{status}, 200, "$t: enqueue");
    }
    my $idle = fire(report(mac => 'Idle'))->[0];
    Test::More::is($idle->{body}, cmd($x), "$t: Idle gets X");

    # [ name, Status, CommandUUID ]; the racing pair, in alternating order
    my @reqs = $kind eq 'acks'
        ? ([ 'Ack X', Acknowledged => $x ], [ 'Ack Y', Acknowledged => $y ])
        : ([ 'Idle', Idle => undef ], [ 'Ack X', Acknowledged => $x ]);
    my $a = $reqs[0][0];    # the one whose winning we name the outcome by
    @reqs = reverse @reqs if $round % 2 == 0;
    my $res = fire(map { report(mac => $_->[1], $_->[2]) } @reqs);

    my %got;
    for my $i (0, 1) {
        my $n = $reqs[$i][0];
        Test::More::is($res->[$i]{status}, 200, "$t: $n answered 200")
            or Test::More::diag($res->[$i]{error} // $res->[$i]{raw});
        $got{$n} = $res->[$i]{body} // '<none>';
    }

    # which one Redis ran first: one event each, in that order
    my @ev = map { "$_->{status} " . ($_->{command_uuid} // '') } last_events(2);
    my %name = map { ("$_->[1] " . ($_->[2] // '') => $_->[0]) } @reqs;
    Test::More::is_deeply([ sort @ev ], [ sort keys %name ],
                          "$t: one Connect event per report");
    my $a_first = ($name{ $ev[0] } // '') eq $a;

    my (%want, %deliveries);
    if ($kind eq 'acks') {
        %want = $a_first ? ('Ack X' => cmd($y), 'Ack Y' => '')
                         : ('Ack Y' => cmd($x), 'Ack X' => '');
        %deliveries = $a_first ? ($x => 1, $y => 1) : ($x => 2, $y => 0);
    } else {
        %want = $a_first ? ('Idle' => cmd($x), 'Ack X' => cmd($y))
                         : ('Idle' => cmd($y), 'Ack X' => cmd($y));
        %deliveries = $a_first ? ($x => 2, $y => 1) : ($x => 1, $y => 2);
    }
    my $order = $a_first ? "$a first" : "$a second";
    Test::More::is($got{$_}, $want{$_}, "$t: $_ answered right ($order)")
        for sort keys %want;

    for my $u ($kind eq 'acks' ? ($x, $y) : ($x)) {
        my $rk = "mdm:r:{$MAC}:$u";
        Test::More::is(redis('HGET', $rk, 'status'), 'Acknowledged',
                       "$t: $u result stored");
        Test::More::like(redis('HGET', $rk, 'completed_at') // '',
                         qr/^\d{13}$/, "$t: $u completed");
    }
    Test::More::is(redis('HGET', "mdm:r:{$MAC}:$_", 'deliveries') // 0,
                   $deliveries{$_}, "$t: $_ delivered $deliveries{$_} times")
        for $x, $y;

    my $left = $kind eq 'acks' ? [] : [$y];
    Test::More::is_deeply(redis('LRANGE', "mdm:q:{$MAC}", 0, -1), $left,
                          "$t: queue left: @$left");
    if ($kind eq 'idle') {
        my $r = fire(report(mac => 'Acknowledged', $y))->[0];
        Test::More::is($r->{body}, '', "$t: Ack Y empties the queue");
    }
    return $a_first ? 1 : 0;
}

sub races {
    my ($block, $kind) = @_;
    my $n = 0;
    $n += race($block, $kind, $_) for 1 .. $Rounds;
    Test::More::diag("race $kind: " . ($kind eq 'acks' ? 'Ack X' : 'Idle')
                     . " ran first in $n of $Rounds rounds")
        if $ENV{TEST_VERBOSE};
}

# Idle reports are events only while a webhook wants them (mdm-worker keeps
# mdm:webhooks:want at "all"); the blocks below read Idle events
redis('SET', 'mdm:webhooks:want', 'all');

run_tests();

__DATA__

=== TEST 1: the whole loop with real bodies: Authenticate, TokenUpdate, enqueue two, Idle gets the first, each Ack gets the next, then an empty 200
--- request eval
[ ::checkin(mac => $::AUTHN),
  ::checkin(mac => $::TOKEN),
  ::enqueue($::MAC, "LOOP-1", "DeviceInformation",
            xml => "\n\t\t<key>Queries</key>\n\t\t<array>\n\t\t\t<string>UDID</string>\n\t\t\t<string>HostName</string>\n\t\t</array>"),
  ::enqueue($::MAC, "LOOP-2", "ProfileList"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "LOOP-1"),
  ::report(mac => "Acknowledged", "LOOP-2", vector => $::PROFILES),
  ::api(GET => "queue/$::MAC") ]
--- error_code eval
[ (200) x 8 ]
--- response_body eval
[ "", "", qr/./, qr/./, ::cmd("LOOP-1"), ::cmd("LOOP-2"), "", qr/./ ]
--- response_headers eval
[ "", "", "Content-Type: application/json", "", "Content-Type: application/xml",
  "Content-Type: application/xml", "Content-Length: 0", "" ]
--- after_each eval
[ undef, undef,
  ::json("" => { status => { $::MAC => { push_result => "queued" } },
                 command_uuid => "LOOP-1", request_type => "DeviceInformation",
                 no_push => "false" }),
  ::json(command_uuid => "LOOP-2", request_type => "ProfileList"),
  ::redis_is([ "HGET", "mdm:r:{$::MAC}:LOOP-1", "deliveries" ] => 1,
             [ "HGET", "mdm:r:{$::MAC}:LOOP-1", "status" ] => undef,
             [ "LRANGE", "mdm:q:{$::MAC}", 0, -1 ] => [ "LOOP-1", "LOOP-2" ]),
  ::redis_is([ "LRANGE", "mdm:q:{$::MAC}", 0, -1 ] => [ "LOOP-2" ]),
  undef,
  ::json("" => { id => $::MAC, commands => [], cursor => "", total => 0 }) ]
--- redis_check eval
[
  [ "HGET mdm:r:{$::MAC}:LOOP-1 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:LOOP-1 report", ::rbody(mac => "Acknowledged", "LOOP-1") ],
  [ "HGET mdm:r:{$::MAC}:LOOP-1 deliveries", "1" ],
  [ "HGET mdm:r:{$::MAC}:LOOP-1 completed_at", qr/^\d{13}$/ ],
  [ "HGET mdm:r:{$::MAC}:LOOP-1 updated_at", qr/^\d{13}$/ ],
  [ "HGET mdm:r:{$::MAC}:LOOP-2 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:LOOP-2 report",
    ::rbody(mac => "Acknowledged", "LOOP-2", vector => $::PROFILES) ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ],
  [ "HGET mdm:cmd:LOOP-1 plist", ::cmd("LOOP-1") ],
  [ "HGET mdm:enr:{$::MAC} last_seen", qr/^\d{13}$/ ],
]
--- no_error_log
[error]
[warn]



=== TEST 2: NanoMDM's NotNow sequence: enqueue; Idle gets it; NotNow gets nothing; Idle gets it again; Acknowledged gets nothing
--- request eval
[ ::enqueue($::MAC, "NN-1", "InstalledApplicationList"),
  ::report(mac => "Idle"),
  ::report(mac => "NotNow", "NN-1"),
  ::api(GET => "queue/$::MAC"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "NN-1", vector => $::APPS) ]
--- error_code eval
[ (200) x 6 ]
--- response_body eval
[ qr/"queued"/, ::cmd("NN-1"), "", qr/./, ::cmd("NN-1"), "" ]
--- after_each eval
[ undef, undef,
  ::redis_is([ "HGET", "mdm:r:{$::MAC}:NN-1", "status" ] => "NotNow",
             [ "HGET", "mdm:r:{$::MAC}:NN-1", "report" ] => ::rbody(mac => "NotNow", "NN-1"),
             [ "HGET", "mdm:r:{$::MAC}:NN-1", "not_now_tally" ] => 1,
             [ "HEXISTS", "mdm:r:{$::MAC}:NN-1", "completed_at" ] => 0),
  ::json("commands/0/command_uuid" => "NN-1", "commands/0/last_status" => "NotNow",
         "commands/0/not_now_tally" => 1, "commands/0/deliveries" => 1,
         "commands/0/request_type" => "InstalledApplicationList",
         "commands" => sub { @{ $_[0] } == 1 }) ]
--- redis_check eval
[
  [ "HGET mdm:r:{$::MAC}:NN-1 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:NN-1 report", ::rbody(mac => "Acknowledged", "NN-1", vector => $::APPS) ],
  [ "HGET mdm:r:{$::MAC}:NN-1 not_now_tally", "1" ],
  [ "HGET mdm:r:{$::MAC}:NN-1 deliveries", "2" ],
  [ "HGET mdm:r:{$::MAC}:NN-1 completed_at", qr/^\d{13}$/ ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ],
]
--- no_error_log
[error]
[warn]



=== TEST 3: NotNow skips NotNow'd commands in the immediate reply only; they come back in queue order on the next report
--- request eval
[ ::enqueue($::MAC, "NN-A", "ProfileList"),
  ::enqueue($::MAC, "NN-B", "SecurityInfo"),
  ::report(mac => "Idle"),
  ::report(mac => "NotNow", "NN-A"),
  ::report(mac => "NotNow", "NN-B"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "NN-A", vector => $::PROFILES),
  ::report(mac => "NotNow", "NN-B"),
  ::report(mac => "Acknowledged", "NN-B", vector => $::SECINFO) ]
--- error_code eval
[ (200) x 9 ]
--- response_body eval
[ qr/./, qr/./,
  ::cmd("NN-A"),   # Idle
  ::cmd("NN-B"),   # NotNow A: A skipped, B is next
  "",              # NotNow B: both NotNow'd, nothing for this reply
  ::cmd("NN-A"),   # Idle: A again, first in the queue
  ::cmd("NN-B"),   # Ack A: B, although it was NotNow'd
  "",              # NotNow B
  "" ]
--- redis_check eval
[
  [ "HGET mdm:r:{$::MAC}:NN-A status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:NN-A not_now_tally", "1" ],
  [ "HGET mdm:r:{$::MAC}:NN-A deliveries", "2" ],
  [ "HGET mdm:r:{$::MAC}:NN-B status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:NN-B not_now_tally", "2" ],
  [ "HGET mdm:r:{$::MAC}:NN-B deliveries", "2" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ],
]
--- no_error_log
[error]
[warn]



=== TEST 4: Error with an ErrorChain: the command leaves the queue, the report is stored and shown by /v1/commands/UUID
--- request eval
[ ::enqueue($::MAC, "ERR-1", "RemoveProfile",
            xml => "\n\t\t<key>Identifier</key>\n\t\t<string>com.example.gone</string>"),
  ::report(mac => "Idle"),
  ::report(mac => "Error", "ERR-1"),
  ::api(GET => "commands/ERR-1"),
  ::api(GET => "queue/$::MAC") ]
--- error_code eval
[ (200) x 5 ]
--- response_body eval
[ qr/./, ::cmd("ERR-1"), "", qr/./, qr/./ ]
--- after_each eval
[ undef, undef, undef,
  ::json(command_uuid => "ERR-1", request_type => "RemoveProfile",
         plist => ::cmd("ERR-1"),
         enrollments => sub { CORE::join(",", keys %{ $_[0] }) eq $::MAC },
         "enrollments/$::MAC/status" => "Error",
         "enrollments/$::MAC/report" => ::rbody(mac => "Error", "ERR-1"),
         "enrollments/$::MAC/report" => qr{<key>ErrorChain</key>.*<integer>97</integer>.*MDMClientError}s,
         "enrollments/$::MAC/deliveries" => 1,
         "enrollments/$::MAC/not_now_tally" => 0,
         "enrollments/$::MAC/updated_at" => qr/^\d{13}$/,
         "enrollments/$::MAC/completed_at" => qr/^\d{13}$/),
  ::json(commands => []) ]
--- redis_check eval
[
  [ "HGET mdm:r:{$::MAC}:ERR-1 status", "Error" ],
  [ "HGET mdm:r:{$::MAC}:ERR-1 report", ::rbody(mac => "Error", "ERR-1") ],
]
--- no_error_log
[error]
[warn]



=== TEST 5: CommandFormatError: the command leaves the queue and the next one is the reply
--- request eval
[ ::enqueue($::MAC, "CFE-1", "NoSuchRequestType"),
  ::enqueue($::MAC, "CFE-2", "SecurityInfo"),
  ::report(mac => "Idle"),
  ::report(mac => "CommandFormatError", "CFE-1"),
  ::report(mac => "Acknowledged", "CFE-2", vector => $::SECINFO),
  ::api(GET => "commands/CFE-1") ]
--- error_code eval
[ (200) x 6 ]
--- response_body eval
[ qr/./, qr/./, ::cmd("CFE-1"), ::cmd("CFE-2"), "", qr/./ ]
--- after_each eval
[ undef, undef, undef, undef, undef,
  ::json("enrollments/$::MAC/status" => "CommandFormatError",
         "enrollments/$::MAC/report" => ::rbody(mac => "CommandFormatError", "CFE-1"),
         "enrollments/$::MAC/completed_at" => qr/^\d{13}$/) ]
--- redis_check eval
[
  [ "HGET mdm:r:{$::MAC}:CFE-1 status", "CommandFormatError" ],
  [ "HGET mdm:r:{$::MAC}:CFE-1 deliveries", "1" ],
  [ "HGET mdm:r:{$::MAC}:CFE-2 status", "Acknowledged" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ],
]
--- no_error_log
[error]
[warn]



=== TEST 6: priority=1 puts a command in front of the queue
--- request eval
[ ::enqueue($::MAC, "PRIO-1", "ProfileList"),
  ::enqueue($::MAC, "PRIO-2", "SecurityInfo"),
  ::enqueue($::MAC, "PRIO-LOCK", "DeviceLock", query => "priority=1",
            xml => "\n\t\t<key>PIN</key>\n\t\t<string>123456</string>"),
  ::api(GET => "queue/$::MAC"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "PRIO-LOCK", vector => $::LOCK),
  ::report(mac => "Acknowledged", "PRIO-1", vector => $::PROFILES),
  ::report(mac => "Acknowledged", "PRIO-2", vector => $::SECINFO),
  ::api(GET => "commands/PRIO-LOCK") ]
--- error_code eval
[ (200) x 9 ]
--- response_body eval
[ qr/./, qr/./, qr/./, qr/./, ::cmd("PRIO-LOCK"), ::cmd("PRIO-1"), ::cmd("PRIO-2"), "", qr/./ ]
--- after_each eval
[ undef, undef, undef,
  ::json(commands => sub { CORE::join(",", map { $_->{command_uuid} } @{ $_[0] })
                           eq "PRIO-LOCK,PRIO-1,PRIO-2" }),
  undef, undef, undef, undef,
  ::json(priority => "true", request_type => "DeviceLock",
         "enrollments/$::MAC/status" => "Acknowledged") ]
--- redis_check eval
[ [ "EXISTS mdm:q:{$::MAC}", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 7: expires=2: a delivered and an undelivered command expire, with status Expired, when the next command is picked after the deadline
--- request eval
[ ::enqueue($::MAC, "EXP-1", "ProfileList", query => "expires=2"),
  ::enqueue($::MAC, "EXP-2", "SecurityInfo", query => "expires=2&nopush=1"),
  ::enqueue($::MAC, "EXP-3", "InstalledApplicationList"),
  ::report(mac => "Idle"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "EXP-3", vector => $::APPS),
  ::api(GET => "commands/EXP-1") ]
--- error_code eval
[ (200) x 7 ]
--- response_body eval
[ qr/./, qr/"no_push":true/, qr/./, ::cmd("EXP-1"), ::cmd("EXP-3"), "", qr/./ ]
--- after_each eval
[ undef,
  ::json("status/$::MAC" => {}, no_push => "true"),
  undef,
  sub { Time::HiRes::sleep(2.1) },
  ::redis_is([ "LRANGE", "mdm:q:{$::MAC}", 0, -1 ] => [ "EXP-3" ]),
  undef,
  ::json("" => sub { abs($_[0]{expires_at} - $_[0]{created_at} - 2000) < 100 },
         "enrollments/$::MAC/status" => "Expired") ]
--- redis_check eval
[
  [ "HGET mdm:r:{$::MAC}:EXP-1 status", "Expired" ],
  [ "HGET mdm:r:{$::MAC}:EXP-1 deliveries", "1" ],
  [ "HGET mdm:r:{$::MAC}:EXP-1 completed_at", qr/^\d{13}$/ ],
  [ "HGET mdm:r:{$::MAC}:EXP-2 status", "Expired" ],
  [ "HEXISTS mdm:r:{$::MAC}:EXP-2 deliveries", "0" ],
  [ "HGET mdm:r:{$::MAC}:EXP-3 status", "Acknowledged" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ],
]
--- no_error_log
[error]
[warn]



=== TEST 8: max_deliveries=2: delivered twice unanswered, the command expires on the next pick
--- request eval
[ ::enqueue($::MAC, "MAXD-1", "ProfileList", query => "max_deliveries=2"),
  ::enqueue($::MAC, "MAXD-2", "SecurityInfo"),
  ::report(mac => "Idle"),
  ::report(mac => "Idle"),
  ::report(mac => "Idle"),
  ::api(GET => "commands/MAXD-1"),
  ::report(mac => "Acknowledged", "MAXD-2", vector => $::SECINFO) ]
--- error_code eval
[ (200) x 7 ]
--- response_body eval
[ qr/./, qr/./, ::cmd("MAXD-1"), ::cmd("MAXD-1"), ::cmd("MAXD-2"), qr/./, "" ]
--- after_each eval
[ undef, undef, undef, undef, undef,
  ::json(max_deliveries => 2, "enrollments/$::MAC/status" => "Expired",
         "enrollments/$::MAC/deliveries" => 2,
         "enrollments/$::MAC/completed_at" => qr/^\d{13}$/) ]
--- redis_check eval
[
  [ "HGET mdm:r:{$::MAC}:MAXD-1 status", "Expired" ],
  [ "HGET mdm:r:{$::MAC}:MAXD-2 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:MAXD-2 deliveries", "1" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ],
]
--- no_error_log
[error]
[warn]



=== TEST 9: (a command waits at the head of the queue)
--- request eval
::enqueue($::MAC, "KEEP-1", "ProfileList")
--- response_body_like: "command_uuid":"KEEP-1"



=== TEST 10: a report for a command never queued to the enrollment is not stored (issue 9 #6): counted, logged at warn, and answered with the queue's head
--- redis_setup
DEL mdm:stats:module
--- request eval
::report(mac => "Acknowledged", "NEVER-QUEUED")
--- response_body eval
::cmd("KEEP-1")
--- redis_check eval
[
  [ "EXISTS mdm:r:{$::MAC}:NEVER-QUEUED", "0" ],
  [ "HGET mdm:stats:module unknown_reports", "1" ],
  [ [ "XREVRANGE", "mdm:events", "+", "-", "COUNT", 1 ],
    sub { my %e = @{ $_[0][0][1] }; ($e{command_uuid} // "") ne "NEVER-QUEUED" } ],
  [ "LRANGE mdm:q:{$::MAC} 0 -1", [ "KEEP-1" ] ],
]
--- grep_error_log_out
mdm: Acknowledged report from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" for command "NEVER-QUEUED", which was never queued to it: not stored (counted in mdm:stats:module unknown_reports)



=== TEST 11: (the waiting command answered)
--- request eval
::report(mac => "Acknowledged", "KEEP-1", vector => $::PROFILES)
--- response_body
--- redis_check eval
[ [ "HGET mdm:r:{$::MAC}:KEEP-1 status", "Acknowledged" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 12: the macOS user channel has its own queue: each channel gets only its own commands
--- request eval
[ ::checkin(user => $::USER_TOKEN),
  ::enqueue($::USER, "USR-1", "ProfileList"),
  ::enqueue($::MAC, "DEV-1", "SecurityInfo"),
  ::report(user => "Idle"),
  ::report(mac => "Idle") ]
--- error_code eval
[ (200) x 5 ]
--- response_body eval
[ "", qr/./, qr/./, ::cmd("USR-1"), ::cmd("DEV-1") ]
--- after_each eval
[ undef, ::json("status/$::USER/push_result" => "queued") ]
--- redis_check eval
[ [ "LRANGE mdm:q:{$::MAC}:$::MACUSER 0 -1", [ "USR-1" ] ],
  [ "LRANGE mdm:q:{$::MAC} 0 -1", [ "DEV-1" ] ],
  [ "HGET mdm:r:{$::MAC}:$::MACUSER:USR-1 deliveries", "1" ],
  [ "HGET mdm:r:{$::MAC}:DEV-1 deliveries", "1" ] ]
--- no_error_log
[error]
[warn]



=== TEST 13: the user's command answered on the device channel was never queued there: not stored, the user's queue keeps it
--- request eval
::report(mac => "Acknowledged", "USR-1", vector => $::PROFILES)
--- response_body eval
::cmd("DEV-1")
--- redis_check eval
[ [ "EXISTS mdm:r:{$::MAC}:USR-1", "0" ],
  [ "HGET mdm:stats:module unknown_reports", "2" ],
  [ "LRANGE mdm:q:{$::MAC}:$::MACUSER 0 -1", [ "USR-1" ] ],
  [ "HEXISTS mdm:r:{$::MAC}:$::MACUSER:USR-1 status", "0" ],
  [ "LRANGE mdm:q:{$::MAC} 0 -1", [ "DEV-1" ] ] ]
--- grep_error_log_out
mdm: Acknowledged report from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" for command "USR-1", which was never queued to it: not stored (counted in mdm:stats:module unknown_reports)



=== TEST 14: each channel answers its own command; the user's answer does not bring the device's command
--- request eval
[ ::report(user => "Acknowledged", "USR-1", vector => $::PROFILES),
  ::report(mac => "Acknowledged", "DEV-1", vector => $::SECINFO),
  ::api(GET => "queue/$::USER") ]
--- error_code eval
[ 200, 200, 200 ]
--- response_body eval
[ "", "", qr/./ ]
--- after_each eval
[ undef, undef, ::json("" => { id => $::USER, commands => [], cursor => "", total => 0 }) ]
--- redis_check eval
[
  [ "HGET mdm:r:{$::MAC}:$::MACUSER:USR-1 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:$::MACUSER:USR-1 report",
    ::rbody(user => "Acknowledged", "USR-1", vector => $::PROFILES) ],
  [ "HGET mdm:r:{$::MAC}:$::MACUSER:USR-1 completed_at", qr/^\d{13}$/ ],
  [ "HGET mdm:r:{$::MAC}:DEV-1 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:DEV-1 deliveries", "2" ],
  [ "HEXISTS mdm:r:{$::MAC}:$::MACUSER:DEV-1 status", "0" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ],
  [ "EXISTS mdm:q:{$::MAC}:$::MACUSER", "0" ],
]
--- no_error_log
[error]
[warn]



=== TEST 15: Authenticate clears the queues of the device and of its user channel
--- request eval
[ ::enqueue($::MAC, "OLD-1", "ProfileList"),
  ::enqueue($::USER, "OLD-2", "ProfileList"),
  ::report(mac => "Idle"),
  ::checkin(mac => $::AUTHN),
  ::api(GET => "queue/$::MAC"),
  ::api(GET => "queue/$::USER") ]
--- error_code eval
[ (200) x 6 ]
--- response_body eval
[ qr/./, qr/./, ::cmd("OLD-1"), "", qr/./, qr/./ ]
--- after_each eval
[ undef, undef, undef, undef,
  ::json(id => $::MAC, commands => []), ::json(id => $::USER, commands => []) ]
--- redis_check eval
[ [ "EXISTS mdm:q:{$::MAC}", "0" ],
  [ "EXISTS mdm:q:{$::MAC}:$::MACUSER", "0" ],
  [ "HGET mdm:enr:{$::MAC} enabled", "0" ],
  [ "HGET mdm:enr:{$::MAC}:$::MACUSER enabled", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 16: until TokenUpdate the device is disabled: its report gets 400
--- request eval
::report(mac => "Idle")
--- error_code: 400
--- grep_error_log_out
mdm: Idle from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: enrollment is disabled (no TokenUpdate since Authenticate, or checked out)



=== TEST 17: so is its user channel
--- request eval
::report(user => "Idle")
--- error_code: 400
--- grep_error_log_out
mdm: Idle from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883" answered 400: enrollment is disabled (no TokenUpdate since Authenticate, or checked out)



=== TEST 18: after TokenUpdate, Idle gets nothing: the queue was cleared
--- request eval
[ ::checkin(mac => $::TOKEN), ::report(mac => "Idle") ]
--- error_code eval
[ 200, 200 ]
--- response_body eval
[ "", "" ]
--- no_error_log
[error]
[warn]



=== TEST 19: a late answer to a cleared command is still stored, at warn
--- request eval
::report(mac => "Acknowledged", "OLD-1", vector => $::PROFILES)
--- response_body
--- redis_check eval
[ [ "HGET mdm:r:{$::MAC}:OLD-1 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:OLD-1 deliveries", "1" ] ]
--- grep_error_log_out
mdm: Acknowledged report from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" for command "OLD-1", which is not queued: stored



=== TEST 20: the user channel after its TokenUpdate: its cleared command is gone too
--- request eval
[ ::checkin(user => $::USER_TOKEN), ::report(user => "Idle") ]
--- error_code eval
[ 200, 200 ]
--- response_body eval
[ "", "" ]
--- redis_check eval
[ [ "HEXISTS mdm:r:{$::MAC}:$::MACUSER:OLD-2 deliveries", "0" ],
  [ "HGET mdm:enr:{$::MAC}:$::MACUSER enabled", "1" ] ]
--- no_error_log
[error]
[warn]



=== TEST 21: mdm_server: check-in and report on one URL, routed by Content-Type (a report with or without its own Content-Type)
--- request eval
[ ::request_with("PUT /mdm\n" . ::trimmed(::vector("nanomdm/mdm/testdata/Authenticate.1.plist")),
                 $::CHECKIN_CT, "ios"),
  ::request_with("PUT /mdm\n" . ::trimmed(::plist_set(::vector("nanomdm/mdm/testdata/TokenUpdate.1.plist"), UDID => $::IOS)),
                 $::CHECKIN_CT, "ios"),
  ::enqueue($::IOS, "SRV-1", "DeviceLock"),
  ::enqueue($::IOS, "SRV-2", "ProfileList"),
  ::report(ios => "Idle", undef, url => "/mdm"),
  ::report(ios => "Acknowledged", "SRV-1", url => "/mdm", vector => $::LOCK, ct => undef),
  ::report(ios => "Acknowledged", "SRV-2", url => "/mdm", vector => $::PROFILES) ]
--- error_code eval
[ (200) x 7 ]
--- response_body eval
[ "", "", qr/./, qr/./, ::cmd("SRV-1"), ::cmd("SRV-2"), "" ]
--- response_headers eval
[ "", "", "", "", "Content-Type: application/xml", "Content-Type: application/xml", "" ]
--- redis_check eval
[
  [ "HGET mdm:enr:{$::IOS} enabled", "1" ],
  [ "HGET mdm:enr:{$::IOS} token_update_tally", "1" ],
  [ "HGET mdm:r:{$::IOS}:SRV-1 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::IOS}:SRV-1 report",
    ::rbody(ios => "Acknowledged", "SRV-1", vector => $::LOCK) ],
  [ "HGET mdm:r:{$::IOS}:SRV-2 status", "Acknowledged" ],
  [ "EXISTS mdm:q:{$::IOS}", "0" ],
]
--- no_error_log
[error]
[warn]



=== TEST 22: mdm_connect answers a check-in with 415, and stores nothing
--- request eval
::request_with("PUT /mdm/connect\n" . ::trimmed(::vector($::TOKEN)), $::CHECKIN_CT, "mac")
--- error_code: 415
--- redis_check eval
[ [ "HGET mdm:enr:{$::MAC} token_update_tally", "1" ] ]
--- grep_error_log_out
mdm: request from enrollment "-" answered 415: a check-in sent to the command URL (mdm_connect)



=== TEST 23: every report is a Connect event in mdm:events, with status, command UUID, query string and raw body
--- request eval
[ ::enqueue($::MAC, "EV-1", "ProfileList"),
  ::report(mac => "Idle", undef, url => "/mdm/connect?tenant=acme"),
  ::report(mac => "Acknowledged", "EV-1", url => "/mdm/connect?tenant=acme", vector => $::PROFILES) ]
--- error_code eval
[ 200, 200, 200 ]
--- response_body eval
[ qr/./, ::cmd("EV-1"), "" ]
--- after_each eval
[ undef,
  sub {
      my ($e) = ::last_events(1);
      Test::More::is_deeply([ @$e{qw(type id enrollment_type device_id status command_uuid params)} ],
          [ "Connect", $::MAC, "Device", $::MAC, "Idle", "", "tenant=acme" ],
          "Idle event");
      Test::More::is($e->{body}, ::rbody(mac => "Idle"), "Idle event body");
      Test::More::like($e->{time}, qr/^\d{13}$/, "Idle event time");
  },
  sub {
      my ($e) = ::last_events(1);
      Test::More::is_deeply([ @$e{qw(type id status command_uuid params)} ],
          [ "Connect", $::MAC, "Acknowledged", "EV-1", "tenant=acme" ],
          "Acknowledged event");
      Test::More::is($e->{body}, ::rbody(mac => "Acknowledged", "EV-1", vector => $::PROFILES),
                     "Acknowledged event body");
  } ]
--- no_error_log
[error]
[warn]



=== TEST 24: user-channel events name the user enrollment
--- request eval
::report(user => "Idle")
--- response_body
--- redis_check eval
[ [ [ "XREVRANGE", "mdm:events", "+", "-", "COUNT", 1 ],
    sub { my %e = @{ $_[0][0][1] };
          $e{type} eq "Connect" && $e{id} eq $::USER && $e{device_id} eq $::MAC
          && $e{enrollment_type} eq "User" && $e{status} eq "Idle" } ] ]
--- no_error_log
[error]



=== TEST 25: two Acks from one device racing, for the delivered command and the one behind it, 8 times: each result stored once, the queue consistent
--- request eval
::api(GET => "queue/$::MAC")
--- response_body_like: "commands":\[\]
--- after_each eval
[ sub { ::races($_[0], "acks") } ]
--- redis_check eval
[ [ "EXISTS mdm:q:{$::MAC}", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 26: Idle racing the Ack of the delivered command, 8 times: the command is never delivered after its Ack was stored
--- request eval
::api(GET => "queue/$::MAC")
--- response_body_like: "commands":\[\]
--- after_each eval
[ sub { ::races($_[0], "idle") } ]
--- redis_check eval
[ [ "EXISTS mdm:q:{$::MAC}", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 27: unknown enrollment: 400
--- request eval
::report(stranger => "Idle")
--- error_code: 400
--- grep_error_log_out
mdm: Idle from enrollment "0BADF00D-0000-4000-8000-000000000000" answered 400: unknown enrollment



=== TEST 28: a report that is no plist: 400
--- request eval
::request_with("PUT /mdm/connect\nStatus=Acknowledged&UDID=$::MAC", $::REPORT_CT, "mac")
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "-" answered 400: body is not an XML plist dictionary



=== TEST 29: no Status: 400
--- request eval
::report(mac => "Idle", undef, set => [ Status => undef ])
--- error_code: 400
--- grep_error_log_out
mdm: request from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: no Status string



=== TEST 30: an unknown Status: 400
--- request eval
::report(mac => "Completed", "X-1")
--- error_code: 400
--- grep_error_log_out
mdm: Completed from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: unknown Status



=== TEST 31: Acknowledged without CommandUUID: 400
--- request eval
::report(mac => "Acknowledged", undef)
--- error_code: 400
--- grep_error_log_out
mdm: Acknowledged from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: CommandUUID missing, or with characters outside [A-Za-z0-9._@+-]



=== TEST 32: NotNow without CommandUUID: 400
--- request eval
::report(mac => "NotNow", undef)
--- error_code: 400
--- grep_error_log_out
mdm: NotNow from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 400: CommandUUID missing, or with characters outside [A-Za-z0-9._@+-]



=== TEST 33: a command enqueued, then CheckOut
--- request eval
[ ::enqueue($::IOS, "AFTER-OUT", "ProfileList"),
  ::request_with("PUT /mdm/checkin\n" . ::trimmed(::plist_set(::vector($::CHECKOUT), UDID => $::IOS)),
                 $::CHECKIN_CT, "ios") ]
--- error_code eval
[ 200, 200 ]
--- response_body eval
[ qr/"queued"/, "" ]
--- redis_check eval
[ [ "HGET mdm:enr:{$::IOS} enabled", "0" ] ]
--- no_error_log
[error]



=== TEST 34: after CheckOut the enrollment is disabled: 400, nothing delivered, the command stays queued
--- request eval
::report(ios => "Idle")
--- error_code: 400
--- response_body_unlike: AFTER-OUT
--- redis_check eval
[ [ "LRANGE mdm:q:{$::IOS} 0 -1", [ "AFTER-OUT" ] ],
  [ "HEXISTS mdm:r:{$::IOS}:AFTER-OUT deliveries", "0" ] ]
--- grep_error_log_out eval
qq{mdm: Idle from enrollment "$::IOS" answered 400: enrollment is disabled (no TokenUpdate since Authenticate, or checked out)\n}



=== TEST 35: rejected reports changed nothing: the device's queue and results are as before
--- request eval
[ ::enqueue($::MAC, "AFTER-400", "ProfileList"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "AFTER-400", vector => $::PROFILES) ]
--- error_code eval
[ 200, 200, 200 ]
--- response_body eval
[ qr/./, ::cmd("AFTER-400"), "" ]
--- redis_check eval
[ [ "EXISTS mdm:r:{$::MAC}:X-1", "0" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 36: the command comes back byte for byte as enqueued: comments, UTF-8, CRLF, odd spacing
--- request eval
[ ::enqueue($::MAC, "RAW-1", "Settings",
            xml => "\r\n\t\t<!-- keep me -->\n\t\t<key>Settings</key>\n\t\t<array><dict><key>Item</key><string>DeviceName</string>"
                 . "<key>DeviceName</key><string>Caf\xc3\xa9 \xe2\x98\x95 &amp; &lt;Mac&gt;</string></dict></array>   "),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "RAW-1", vector => $::PROFILES) ]
--- error_code eval
[ 200, 200, 200 ]
--- response_body eval
[ qr/./, ::cmd("RAW-1"), "" ]
--- response_headers eval
[ "", "Content-Type: application/xml", "" ]
--- no_error_log
[error]
[warn]



=== TEST 37: enqueue for a known and an unknown enrollment: 207, per-id results; the same UUID again: 409
--- request eval
[ ::enqueue("$::MAC,NO-SUCH-DEVICE", "MULTI-1", "ProfileList"),
  ::enqueue($::MAC, "MULTI-1", "ProfileList"),
  ::api(GET => "commands/NO-SUCH-COMMAND"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "MULTI-1", vector => $::PROFILES) ]
--- error_code eval
[ 207, 409, 404, 200, 200 ]
--- response_body eval
[ qr/./, qr/already exists/, qr/unknown command/, ::cmd("MULTI-1"), "" ]
--- after_each eval
[ ::json("status/$::MAC" => { push_result => "queued" },
         "status/NO-SUCH-DEVICE" => { command_error => "unknown enrollment" }) ]
--- redis_check eval
[ [ "LRANGE mdm:push 0 -1", sub { !grep { $_ eq "NO-SUCH-DEVICE" } @{ $_[0] } } ],
  [ "EXISTS mdm:q:{NO-SUCH-DEVICE}", "0" ] ]
--- no_error_log
[error]



=== TEST 38: a large command and a large report (bodies nginx buffers in a temporary file) go through byte for byte
--- request eval
[ ::enqueue($::MAC, "BIG-1", "InstallProfile",
            xml => "\n\t\t<key>Payload</key>\n\t\t<data>\n" . ("\t\tQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n" x 1200) . "\t\t</data>"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "BIG-1", vector => $::APPS,
           set => [ Padding => ("x" x 100000) ]) ]
--- error_code eval
[ 200, 200, 200 ]
--- response_body eval
[ qr/"queued"/, ::cmd("BIG-1"), "" ]
--- redis_check eval
[ [ "HGET mdm:cmd:BIG-1 plist", ::cmd("BIG-1") ],
  [ "HGET mdm:r:{$::MAC}:BIG-1 report",
    ::rbody(mac => "Acknowledged", "BIG-1", vector => $::APPS, set => [ Padding => ("x" x 100000) ]) ],
  [ "HGET mdm:r:{$::MAC}:BIG-1 status", "Acknowledged" ] ]
--- no_error_log
[error]
not queued



=== TEST 39: one command for the device and its user channel: stored once, queued twice, answered separately
--- request eval
[ ::enqueue("$::MAC,$::USER", "BOTH-1", "ProfileList"),
  ::report(mac => "Idle"),
  ::report(user => "Idle"),
  ::report(mac => "Acknowledged", "BOTH-1", vector => $::PROFILES),
  ::api(GET => "commands/BOTH-1"),
  ::report(user => "Idle"),
  ::report(user => "Error", "BOTH-1"),
  ::api(GET => "commands/BOTH-1") ]
--- error_code eval
[ (200) x 8 ]
--- response_body eval
[ qr/./, ::cmd("BOTH-1"), ::cmd("BOTH-1"), "", qr/./, ::cmd("BOTH-1"), "", qr/./ ]
--- after_each eval
[ ::json("status/$::MAC/push_result" => "queued", "status/$::USER/push_result" => "queued"),
  undef, undef, undef,
  ::json("enrollments/$::MAC/status" => "Acknowledged",
         "enrollments/$::USER/status" => "Queued",
         "enrollments/$::USER/deliveries" => 1),
  undef, undef,
  ::json("enrollments/$::MAC/status" => "Acknowledged",
         "enrollments/$::USER/status" => "Error",
         "enrollments/$::USER/report" => ::rbody(user => "Error", "BOTH-1"),
         "enrollments/$::USER/deliveries" => 2) ]
--- redis_check eval
[ [ "EXISTS mdm:q:{$::MAC}", "0" ],
  [ "EXISTS mdm:q:{$::MAC}:$::MACUSER", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 40: the device's loop on one keep-alive connection: Idle, then each Ack gets the next command, the last one nothing
--- request eval
[ ::enqueue($::MAC, "KA-1", "ProfileList"), ::enqueue($::MAC, "KA-2", "SecurityInfo") ]
--- error_code eval
[ 200, 200 ]
--- response_body eval
[ qr/./, qr/./ ]



=== TEST 41: (the pipelined reports)
--- pipelined_requests eval
[ ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "KA-1", vector => $::PROFILES),
  ::report(mac => "Acknowledged", "KA-2", vector => $::SECINFO) ]
--- more_headers eval
[ ($::REPORT_CT) x 3 ]
--- signed_by eval: [ ("mac") x 3 ]
--- error_code eval
[ 200, 200, 200 ]
--- response_body eval
[ ::cmd("KA-1"), ::cmd("KA-2"), "" ]
--- redis_check eval
[ [ "HGET mdm:r:{$::MAC}:KA-1 status", "Acknowledged" ],
  [ "HGET mdm:r:{$::MAC}:KA-2 status", "Acknowledged" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 42: 18 commands, the device says NotNow to each as it comes: every reply skips all NotNow'd ones, across more than one scan batch
--- request eval
[ (map { ::enqueue($::MAC, sprintf("NN-%02d", $_), "ProfileList", query => "nopush=1") } 1 .. 18),
  ::report(mac => "Idle"),
  (map { ::report(mac => "NotNow", sprintf("NN-%02d", $_)) } 1 .. 18),
  ::report(mac => "Idle") ]
--- error_code eval
[ (200) x 38 ]
--- response_body eval
[ (qr/./) x 18,
  ::cmd("NN-01"),
  (map { ::cmd(sprintf("NN-%02d", $_)) } 2 .. 18),
  "",
  ::cmd("NN-01") ]
--- redis_check eval
[ [ "LLEN mdm:q:{$::MAC}", "18" ],
  [ "HGET mdm:r:{$::MAC}:NN-17 status", "NotNow" ],
  [ "HGET mdm:r:{$::MAC}:NN-01 deliveries", "2" ],
  [ "HGET mdm:r:{$::MAC}:NN-18 deliveries", "1" ] ]
--- no_error_log
[error]
[warn]



=== TEST 43: DELETE /v1/queue/ID empties it; each removed command gets a Deleted result
--- request eval
[ ::api(DELETE => "queue/$::MAC"), ::report(mac => "Idle") ]
--- error_code eval
[ 200, 200 ]
--- response_body eval
[ qr/./, "" ]
--- after_each eval
[ ::json(removed => [ map { sprintf("NN-%02d", $_) } 1 .. 18 ]) ]
--- redis_check eval
[ [ "HGET mdm:r:{$::MAC}:NN-05 status", "Deleted" ],
  [ "EXISTS mdm:q:{$::MAC}", "0" ] ]
--- no_error_log
[error]
[warn]



=== TEST 44: 20 commands expire at once, more than one scan batch: Idle gets the live one behind them
--- request eval
[ (map { ::enqueue($::MAC, sprintf("EXPB-%02d", $_), "ProfileList", query => "nopush=1&expires=1") } 1 .. 20),
  ::enqueue($::MAC, "EXPB-LIVE", "SecurityInfo"),
  ::report(mac => "Idle"),
  ::report(mac => "Acknowledged", "EXPB-LIVE", vector => $::SECINFO) ]
--- error_code eval
[ (200) x 23 ]
--- response_body eval
[ (qr/./) x 21, ::cmd("EXPB-LIVE"), "" ]
--- after_each eval
[ (undef) x 20, sub { Time::HiRes::sleep(1.2) } ]
--- redis_check eval
[ (map { [ "HGET mdm:r:{$::MAC}:" . sprintf("EXPB-%02d", $_) . " status", "Expired" ] } 1 .. 20),
  [ "EXISTS mdm:q:{$::MAC}", "0" ] ]
--- no_error_log
[error]
[warn]
