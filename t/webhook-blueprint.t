# The webhook of a blueprint run (checkin.lua's blueprint.run event, after
# the first TokenUpdate's own): DEP's shape with "blueprint_event", the
# enrollment's lane, every field but the lane key and the type.
#
#     prove -I. -I t/lib t/webhook-blueprint.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use JSON::PP qw(decode_json);

redis_flush();

my $HOOK = start_webhook();

# the layout of checkin.lua's run_blueprint()
my %RUN = (type => 'blueprint.run', id => 'UDID-BP-1', enrollment_id => 'UDID-BP-1',
           device_id => 'UDID-BP-1', time => '1700000000123', blueprint => 'bootstrap',
           command_uuids => 'bp.bootstrap.7.1,bp.bootstrap.7.2',
           request_types => 'InstallProfile,DeviceConfigured');
my $id = redis('XADD', 'mdm:events', '*', %RUN);

my $w = start_worker(webhook_url => $HOOK->{hook_url}, worker_id => 'wbp', repush_interval => 0);
my @h = webhook_wait($HOOK, 1, 30);
is(scalar @h, 1, 'delivered');
my $j = eval { decode_json($h[0]{body}) } // {};
is($j->{topic}, 'blueprint.run', 'topic: the type');
is($j->{event_id}, $id, 'event_id: the stream id');
is($j->{created_at}, '2023-11-14T22:13:20.123Z', 'created_at');
is_deeply($j->{blueprint_event}, { map { $_ => $RUN{$_} } grep { !/^(type|id|time)$/ } keys %RUN },
          'blueprint_event: the enrollment, the blueprint, its commands');
ok(!exists $j->{dep_event} && !exists $j->{checkin_event}, 'no other event key');
is(stop_worker($w), 0, 'worker exits 0');
done_testing;
