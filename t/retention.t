# Retention of what devices write to Redis (issue 9 #6, #7): result keys
# expire (mdm_result_ttl), reports for commands never queued are counted and
# not stored, every event is capped (mdm_events_max), Idle events only while
# a webhook wants them (mdm:webhooks:want), device Topics stay out of
# mdm:topics, certificate index entries expire, user channels are capped, an
# Authenticate clears a long queue in bounded work, and a connect over a
# 100,000-command NotNow'd queue looks at a bounded part of it.
#
# Blocks run in order and share Redis: the device enrolls in TEST 1.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use Time::HiRes ();

no_shuffle();

mdm_server_defaults(q{
    location = /ttl/mdm { mdm_server; mdm_result_ttl 1h; }
    location = /cap/mdm { mdm_server; mdm_events_max 10; }
    location = /nocap/mdm { mdm_server; mdm_events_max 0; }
});

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $REPORT_CT = 'Content-Type: application/x-apple-aspen-mdm';
our $NOTNOW = 'commandment/testdata/NotNow/iOS-11.3.1.xml';

# mdm:events holds 1,000 entries that are not events of the device
sub filler_events {
    redis("DEL", "mdm:events");
    redis("EVAL", "for i = 1, 1000 do redis.call('XADD', 'mdm:events', '*', 'type', 'Filler') end", 0);
}

# a command report of the Mac, as PUT PATH
sub report {
    my ($status, $uuid, $path) = @_;
    my $body = plist_set(vector($NOTNOW), UDID => $MAC, Status => $status,
                         CommandUUID => $uuid);
    $body =~ s/^\s+|\s+\z//g;
    return "PUT " . ($path // '/mdm') . "\n$body";
}

# --- reports eval: the block's request(s), the Mac's command reports made
# by report(), each sent with the report Content-Type and signed by "mac"
add_block_preprocessor(sub {
    my ($block) = @_;
    my $r = $block->can('reports') && $block->reports or return;
    $block->set_value(request => $r);
    $block->set_value(more_headers => ref $r ? [ ($REPORT_CT) x @$r ] : $REPORT_CT);
    $block->set_value(signed_by => 'mac');
});

# Redis commands that put a command in the Mac's queue as the API does
sub enqueue_cmds {
    my ($uuid, $list) = @_;
    $list //= "mdm:q:{$MAC}";
    my $plist = "<plist><dict><key>CommandUUID</key><string>$uuid</string>"
              . "</dict></plist>";
    return [ [ 'RPUSH', $list, $uuid ],
             [ 'HSET', "mdm:cmd:$uuid", 'plist', $plist, 'request_type',
               'ProfileList' ],
             [ 'SADD', "mdm:cmd:$uuid:targets", $MAC ] ];
}

our $IOS = plist_get(vector('nanomdm/mdm/testdata/Authenticate.1.plist'), 'UDID');

# a signed raw request of $who (mac or ios) to /mdm
sub signed {
    my ($who, $text, $ct) = @_;
    my ($line, $body) = split /\n/, $text, 2;
    my (undef, $path) = split / /, $line;
    return http_request('PUT', $path, $body,
                        [ 'Content-Type' => $ct,
                          'Mdm-Signature' => mdm_signature($body, $who) ]);
}

# The Mac's NotNow over its 100,000-command queue and the iPhone's Idle, at
# once: both answered, quickly
sub notnow_and_other_device {
    my $ct = 'application/x-apple-aspen-mdm';
    my $idle = plist_set(vector($NOTNOW), UDID => $IOS, Status => 'Idle',
                         CommandUUID => undef) =~ s/^\s+|\s+\z//gr;
    my @reqs = (signed('mac', report('NotNow', 'NN-000002'), $ct),
                signed('ios', "PUT /mdm\n$idle", $ct));
    my $t0 = Time::HiRes::time;
    my $res = concurrent_requests(server_port_for_client(), \@reqs, timeout => 10);
    my $secs = Time::HiRes::time - $t0;
    Test::More::is_deeply([ map { $_->{status} } @$res ], [ 200, 200 ],
                          "NotNow over 100,000 and another device's Idle: 200");
    Test::More::diag(sprintf "NotNow over 100,000 queued + another device's "
                     . "Idle, concurrently: %.0f ms", $secs * 1000);
    Test::More::cmp_ok($secs, '<', 0.15, "both answered within 150 ms");
}

sub calls {
    my ($cmd) = @_;
    return (redis('INFO', 'commandstats') =~ /cmdstat_$cmd:calls=(\d+)/)[0] // 0;
}

run_tests();

__DATA__

=== TEST 1: Authenticate and TokenUpdate: the device's Topic does not go into mdm:topics; the certificate index entry expires a day after the certificate
--- redis_setup
FLUSHALL
--- request eval
[ checkin_request("/mdm nanomdm/mdm/testdata/Authenticate.2.plist"),
  checkin_request("/mdm nanomdm/mdm/testdata/TokenUpdate.2.plist") ]
--- signed_by: mac
--- error_code eval
[ 200, 200 ]
--- redis_check eval
[ [ "HGET mdm:enr:{$::MAC} enabled", "1" ],
  [ "EXISTS mdm:topics", "0" ],
  [ "TTL mdm:certidx:" . cert_sha256("mac"), sub { $_[0] > 86400 } ],
  [ "EXPIRETIME mdm:certidx:" . cert_sha256("mac"),
    sub { $_[0] == redis("HGET", "mdm:enr:{$::MAC}", cert_sha256("mac")) + 86400 } ] ]
--- no_error_log
[error]



=== TEST 2: Idle with no webhook (no mdm:webhooks:want): no event
--- redis_setup
DEL mdm:events mdm:webhooks:want
--- reports eval
::report("Idle")
--- error_code: 200
--- redis_check eval
[ [ "EXISTS mdm:events", "0" ], [ "HGET mdm:enr:{$::MAC} last_seen", qr/^\d{13}$/ ] ]
--- no_error_log
[error]



=== TEST 3: Idle while the webhook does not want Idles ("noidle"): no event
--- redis_setup
SET mdm:webhooks:want noidle
--- reports eval
::report("Idle")
--- error_code: 200
--- redis_check eval
[ [ "EXISTS mdm:events", "0" ] ]
--- no_error_log
[error]



=== TEST 4: Idle while a webhook wants all events: one Connect event
--- redis_setup
SET mdm:webhooks:want all
--- reports eval
::report("Idle")
--- error_code: 200
--- redis_check eval
[ [ "XLEN mdm:events", "1" ],
  [ [ "XREVRANGE", "mdm:events", "+", "-", "COUNT", 1 ],
    sub { my %e = @{ $_[0][0][1] }; $e{type} eq "Connect" && $e{status} eq "Idle" } ] ]
--- no_error_log
[error]



=== TEST 5: a delivered command's result expires after mdm_result_ttl, and again once answered
--- redis_setup eval
[ [ "DEL", "mdm:webhooks:want" ], @{ ::enqueue_cmds("TTL-1") } ]
--- reports eval
[ ::report("Idle", undef, "/ttl/mdm"), ::report("Acknowledged", "TTL-1", "/ttl/mdm") ]
--- error_code eval
[ 200, 200 ]
--- response_body eval
[ qr/TTL-1/, "" ]
--- redis_check eval
[ [ "HGET mdm:r:{$::MAC}:TTL-1 status", "Acknowledged" ],
  [ "TTL mdm:r:{$::MAC}:TTL-1", sub { $_[0] > 3500 && $_[0] <= 3600 } ] ]
--- no_error_log
[error]



=== TEST 6: the default mdm_result_ttl is 30 days
--- redis_setup eval
::enqueue_cmds("TTL-2")
--- reports eval
[ ::report("Idle"), ::report("Error", "TTL-2") ]
--- error_code eval
[ 200, 200 ]
--- redis_check eval
[ [ "HGET mdm:r:{$::MAC}:TTL-2 status", "Error" ],
  [ "TTL mdm:r:{$::MAC}:TTL-2", sub { $_[0] > 2592000 - 100 && $_[0] <= 2592000 } ] ]
--- no_error_log
[error]



=== TEST 7: a report for a command never queued to the device is not stored: counted, one warning, no event
--- redis_setup
DEL mdm:stats:module mdm:events
SET mdm:webhooks:want all
--- reports eval
::report("Acknowledged", "MADE-UP-1")
--- error_code: 200
--- redis_check eval
[ [ "EXISTS mdm:r:{$::MAC}:MADE-UP-1", "0" ],
  [ "HGET mdm:stats:module unknown_reports", "1" ],
  [ "EXISTS mdm:events", "0" ] ]
--- error_log
mdm: Acknowledged report from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" for command "MADE-UP-1", which was never queued to it: not stored (counted in mdm:stats:module unknown_reports)
--- no_error_log
[error]



=== TEST 8: so are NotNow reports for made-up commands
--- reports eval
::report("NotNow", "MADE-UP-2")
--- error_code: 200
--- redis_check eval
[ [ "EXISTS mdm:r:{$::MAC}:MADE-UP-2", "0" ],
  [ "HGET mdm:stats:module unknown_reports", "2" ] ]
--- no_error_log
[error]



=== TEST 9: every event is written with MAXLEN ~ mdm_events_max
--- redis_setup eval
\&::filler_events
--- reports eval
::report("Idle", undef, "/cap/mdm")
--- error_code: 200
--- redis_check eval
[ [ "XLEN mdm:events", sub { $_[0] < 200 } ] ]
--- no_error_log
[error]



=== TEST 10: mdm_events_max 0: no cap
--- redis_setup eval
\&::filler_events
--- reports eval
::report("Idle", undef, "/nocap/mdm")
--- error_code: 200
--- redis_check eval
[ [ "XLEN mdm:events", "1001" ] ]
--- no_error_log
[error]



=== TEST 11: check-in events are capped too
--- redis_setup eval
\&::filler_events
--- request eval
checkin_request("/cap/mdm nanomdm/mdm/testdata/TokenUpdate.2.plist")
--- signed_by: mac
--- error_code: 200
--- redis_check eval
[ [ "XLEN mdm:events", sub { $_[0] < 200 } ] ]
--- no_error_log
[error]



=== TEST 12: 100,000 NotNow'd commands: a NotNow is answered after looking at a bounded head of the queue, empty, and the device's other requests and other devices go on
--- redis_setup eval
sub {
    redis("DEL", "mdm:q:{$::MAC}", "mdm:qp:{$::MAC}", "mdm:events", "mdm:webhooks:want");
    redis("EVAL", q{
        for i = 1, 100000 do
            local u = string.format('NN-%06d', i)
            redis.call('RPUSH', KEYS[1], u)
            redis.call('HSET', 'mdm:cmd:' .. u, 'plist', '<plist/>')
            redis.call('HSET', KEYS[2] .. u, 'status', 'NotNow', 'deliveries', '1')
        end }, 2, "mdm:q:{$::MAC}", "mdm:r:{$::MAC}:");
    redis("CONFIG", "RESETSTAT");
}
--- more_headers eval
[ $::REPORT_CT, $::REPORT_CT, "Content-Type: $t::MDM::CheckinType" ]
--- request eval
[ ::report("NotNow", "NN-000001"), ::report("Idle"),
  checkin_request("/mdm nanomdm/mdm/testdata/TokenUpdate.2.plist") ]
--- signed_by: mac
--- error_code eval
[ 200, 200, 200 ]
--- response_body eval
[ "", qr/^<plist\/>$/, "" ]
--- redis_check eval
[ [ "LLEN mdm:q:{$::MAC}", "100000" ],
  [ "HGET mdm:r:{$::MAC}:NN-000001 not_now_tally", "1" ],
  [ "HGET mdm:r:{$::MAC}:NN-000001 deliveries", "2" ],
  # a bounded scan: 100 entries, two HMGETs each, whatever the queue length
  [ "PING", sub { ::calls("hmget") <= 2 * 100 + 10 } ] ]
--- no_error_log
[error]



=== TEST 13: (a second device, an iPhone, enrolls)
--- request eval
[ checkin_request("/mdm nanomdm/mdm/testdata/Authenticate.1.plist"),
  checkin_request("/mdm nanomdm/mdm/testdata/TokenUpdate.1.plist") ]
--- signed_by: ios
--- error_code eval
[ 200, 200 ]



=== TEST 14: the Mac's NotNow over its 100,000 queued commands and the iPhone's Idle at the same time: both answered at once
--- reports eval
::report("Idle")
--- error_code: 200
--- after_each eval
[ \&::notnow_and_other_device ]
--- no_error_log
[error]



=== TEST 15: an Authenticate over a 5,000-command queue marks 1,000 Cleared and drops the queue
--- redis_setup eval
sub {
    redis("DEL", "mdm:q:{$::MAC}");
    redis("EVAL", q{
        for i = 1, 5000 do
            redis.call('RPUSH', KEYS[1], string.format('CL-%06d', i))
        end }, 1, "mdm:q:{$::MAC}");
    redis("CONFIG", "RESETSTAT");
}
--- request eval
checkin_request("/mdm nanomdm/mdm/testdata/Authenticate.2.plist")
--- signed_by: mac
--- error_code: 200
--- redis_check eval
[ [ "EXISTS mdm:q:{$::MAC}", "0" ],
  [ "HGET mdm:r:{$::MAC}:CL-000001 status", "Cleared" ],
  [ "TTL mdm:r:{$::MAC}:CL-000001", sub { $_[0] > 0 } ],
  [ "HGET mdm:r:{$::MAC}:CL-001000 status", "Cleared" ],
  [ "EXISTS mdm:r:{$::MAC}:CL-001001", "0" ],
  [ "PING", sub { ::calls("hset") <= 1100 } ] ]
--- no_error_log
[error]



=== TEST 16: a device has at most 256 user channels: the 257th TokenUpdate with a new UserID is refused
--- redis_setup eval
sub {
    redis("DEL", "mdm:users:{$::MAC}");
    redis("SADD", "mdm:users:{$::MAC}", map { ":U$_" } 1 .. 256);
}
--- request eval
checkin_request("/mdm commandment/testdata/TokenUpdate/10.12.2-user.xml", UDID => $::MAC)
--- signed_by: mac
--- error_code: 400
--- redis_check eval
[ [ "SCARD mdm:users:{$::MAC}", "256" ] ]
--- error_log
answered 400: the device has 256 user channels already
