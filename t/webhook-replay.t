# Dead letters back to the receiver, end to end (contract C4, issue 9's
# "durable" webhooks): mdm-worker writes events it gave up on to
# mdm:webhooks:dead in its format (event_id, error, the event's fields);
# the admin API's replay operation (api.lua, run here as the module runs it:
# ngx_mdm_keys.h's locals + common.lua + api.lua) puts them back on
# mdm:events; the same worker then delivers each once, in order per
# enrollment, and trims the stream.  Bounded: about 40 s.
#
#     prove -I. -I t/lib t/webhook-replay.t

use strict; use warnings;
use Test::More;
use t::MDM; use t::MDMWorker; use t::MDMWebhook;
use Time::HiRes qw(time sleep);
sub slurp { local $/; open my $f, '<', $_[0] or die; <$f> }
my $keys = join '', map { /^#define (MDM_KEY_\w+)\s+"([^"]*)"/ ? "local $1 = '$2'\n" : '' } split /\n/, slurp('ngx_mdm_module/ngx_mdm_keys.h');
my $api = $keys . slurp('ngx_mdm_module/lua/common.lua') . slurp('ngx_mdm_module/lua/api.lua');
redis_flush();
my $r = fast_receiver(); receiver_signal($r, "USR1");
my $w = start_worker(webhook_url => $r->{url}, worker_id => 'rp', webhook_backoff_ms => 50,
                     webhook_retries => 2, heartbeat => 1, repush_interval => 0);
is(add_events(prefix => 'R', from => 1, to => 3, per => 2), 6, "6 events");
wait_for(sub { redis('XLEN', 'mdm:webhooks:dead') >= 6 }, 30, "6 dead letters");
my $first = redis('XRANGE', 'mdm:webhooks:dead', '-', '+', 'COUNT', 1)->[0][1];
is_deeply([ @$first[0, 2] ], [ 'event_id', 'error' ], "dead letter: event_id, error first");
is($first->[4], 'type', "then the event's fields");
my $before = receiver_count($r);
receiver_signal($r, 'USR2');
my $rep = redis('EVAL', $api, 0, 'replay', int(time*1000), 10, 1000000);
is($rep->[0], 200, "replay answered 200");
like($rep->[1], qr/"replayed":6\b/, "six replayed");
wait_for(sub { receiver_count($r) >= $before + 6 }, 30, "replayed events delivered");
my @d = deliveries($r);
my @last = @d[-6 .. -1];
diag(join ' ', map { $_->[1] } @last);
my %c = check_deliveries(\@last, event_uuids(prefix => 'R', from => 1, to => 3, per => 2));
diag(join ', ', map { "$_=$c{$_}" } sort keys %c);
is($c{missing}, 0, 'none missing'); is($c{out_of_order}, 0, 'in order'); is($c{duplicates}, 0, 'no dups');
wait_for(sub { redis('XLEN', 'mdm:events') == 0 }, 10, "stream trimmed");
is(redis('XLEN', 'mdm:webhooks:dead'), 0, 'dead empty');
stop_worker($w);
done_testing();
