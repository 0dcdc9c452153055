# Webhook bodies built with a JSON library (issue 9 #14): quotes,
# backslashes, control characters, NULs and bytes that are not UTF-8 in
# any field of an event give valid JSON with exactly the content (NULs
# kept, invalid bytes as U+FFFD, the raw payload byte for byte); dead
# letters keep values with NULs whole; device-chosen ids are escaped in
# the worker's log.
#
#     prove -I. -I t/lib t/webhook-json.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMWebhook;
use JSON::PP qw(decode_json);
use MIME::Base64 qw(decode_base64);
use Digest::SHA qw(hmac_sha256_base64);

redis_flush();

my $HOOK = start_webhook();

# the field layout of checkin.lua / connect.lua, hostile values
my %CHECKIN = (
    type => qq{Token"Update\\\x01\x00x}, id => qq{U"1\\\n\x00z},
    enrollment_type => 'Device', device_id => qq{U"1\\\n\x00z},
    time => '1700000000123',
    params => 'a=%22q%22&b=%00c&k%5C=v+w&e=%ff&&flag',
    token_update_tally => '3',
    body => qq{<plist>\x00\x01"\\\xff\xfe</plist>},
);
my %CONNECT = (
    type => 'Connect', id => qq{U2:user"\xc3\xa9\xff}, enrollment_type => 'User',
    device_id => 'U2', time => '1700000000999', params => '',
    status => qq{Ack"\x1f\\}, command_uuid => qq{c\x00\\u0000}, body => "abc\x00def",
);
my %UE = (
    type => 'Authenticate', id => 'E3', enrollment_type => 'User Enrollment (Device)',
    device_id => 'E3', time => '0', params => 'x=1', token_update_tally => '',
    body => '',
);

my @ids = map { redis('XADD', 'mdm:events', '*', %$_) } \%CHECKIN, \%CONNECT, \%UE;

# under valgrind: the JSON, lanes and tables are new C
my $w = start_worker(webhook_url => $HOOK->{hook_url}, webhook_hmac_key => 'k',
                     worker_id => 'wj', repush_interval => 0, valgrind => 1);
my @h = webhook_wait($HOOK, 3, 60);
is(scalar @h, 3, "three events delivered");

my @j = map { my $b = $_->{body}; eval { decode_json($b) } } @h;
is(scalar(grep { ref eq 'HASH' } @j), 3, "every body is valid JSON");
# three enrollments, three lanes: in any order
my %by = map { ($j[$_]{event_id} // '') => $_ } 0 .. $#j;
@j = map { $j[ $by{$_} // 0 ] } @ids;
@h = map { $h[ $by{$_} // 0 ] } @ids;
ok(!grep({ $_->{body} =~ /\n/ } @h), "one line each");
is($h[$_]{headers}{'x-hmac-signature'}, hmac_sha256_base64($h[$_]{body}, 'k') . '=',
   "HMAC of body $_") for 0 .. 2;

my $c = $j[0];
is($c->{topic}, qq{mdm.Token"Update\\\x01\x00x}, "topic: the type, NUL and all");
is($c->{event_id}, $ids[0], "event_id");
is($c->{created_at}, '2023-11-14T22:13:20.123Z', "created_at");
my $e = $c->{checkin_event};
is($e->{udid}, qq{U"1\\\n\x00z}, "udid with a quote, a backslash, a newline, a NUL");
is_deeply($e->{ids}, { id => qq{U"1\\\n\x00z}, type => 'Device' }, "ids, no parent_id");
is_deeply($e->{url_params}, { a => '"q"', b => "\x00c", 'k\\' => 'v w', e => "\x{FFFD}", flag => '' },
          "url_params decoded, invalid UTF-8 as U+FFFD");
is($e->{token_update_tally}, 3, "token_update_tally");
ok(JSON::PP->new->encode([ $e->{token_update_tally} ]) eq '[3]', "... a number");
is(decode_base64($e->{raw_payload}), $CHECKIN{body}, "raw_payload: the body byte for byte, past its NUL");

my $a = $j[1]{acknowledge_event};
is($j[1]{topic}, 'mdm.Connect', "Connect: topic");
ok($a && !$j[1]{checkin_event}, "acknowledge_event");
is($a->{status}, qq{Ack"\x1f\\}, "status");
is($a->{command_uuid}, qq{c\x00\\u0000}, "command_uuid with a NUL and a literal \\u0000");
is_deeply($a->{ids}, { id => "U2:user\"\x{e9}\x{FFFD}", type => 'User', parent_id => 'U2' },
          "ids: UTF-8 kept, an invalid byte as U+FFFD, parent_id");
is($a->{url_params}, undef, "no params: null");
is(decode_base64($a->{raw_payload}), "abc\x00def", "raw_payload past a NUL");

my $u = $j[2]{checkin_event};
is($u->{enrollment_id}, 'E3', "User Enrollment: enrollment_id");
ok(!exists $u->{udid}, "... and no udid");
is_deeply($u->{url_params}, { x => '1' }, "url_params");
ok(!exists $u->{token_update_tally}, "no tally when empty");
is($j[2]{created_at}, '1970-01-01T00:00:00.000Z', "created_at at 0");

# dead letters keep every field whole, NULs included
webhook_rules($HOOK, { status => 500 });
my %DEAD = (%CONNECT, id => "D\nE", device_id => "D\nE", type => "Check\x00Out",
            body => "x\x00y");
my $dead_id = redis('XADD', 'mdm:events', '*', %DEAD);
stop_worker($w);
valgrind_clean($w, "the worker that built them");
$w = start_worker(webhook_url => $HOOK->{hook_url}, worker_id => 'wj',
                  webhook_retries => 1, repush_interval => 0);
wait_for(sub { redis('XLEN', 'mdm:webhooks:dead') >= 1 }, 20, "a dead letter");
my $d = redis('XRANGE', 'mdm:webhooks:dead', '-', '+');
my %f = @{ $d->[0][1] };
is($f{event_id}, $dead_id, "dead letter: event_id");
is($f{error}, 'HTTP 500', "dead letter: error");
is($f{$_}, $DEAD{$_}, "dead letter: $_ whole") for sort keys %DEAD;
is(stop_worker($w), 0, "clean exit");
like(worker_log($w), qr/webhook for enrollment "D\\nE" \(event \Q$dead_id\E\) failed/,
     "the enrollment id escaped in the log");

done_testing();
