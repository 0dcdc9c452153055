# mdm-worker's inventory refresh (inventory_interval, issue 12): device
# channels whose inventory is older than the interval get a
# DeviceInformation (the module's template's queries, fitting Apple's
# schema) and a push, at most inventory_batch a second; disabled devices,
# user channels and fresh inventories do not; one that was asked is not
# asked again before the next interval. Off by default.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMSchema;
use t::MDMWorker;

use Time::HiRes qw(time sleep);

no_shuffle();
api_defaults('invw-key');

sub enr {
    my ($id, @f) = @_;
    return [ 'HSET', "mdm:enr:{$id}", 'type', 'Device', 'enabled', '1', @f ];
}

sub queued {
    my ($id) = @_;
    return [ map { redis('HGET', "mdm:cmd:$_", 'request_type') }
             @{ redis('LRANGE', "mdm:q:{$id}", 0, -1) } ];
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(enr queued);
    *{"Test::Base::Filter::$_"} = \&{"t::MDMSchema::$_"} for qw(plist_parse schema_check);
}

run_tests();

__DATA__

=== TEST 1: stale, never-asked and fresh devices; at most inventory_batch a second; each once per interval; the plist fits Apple's schema and asks the template's default queries
--- redis_setup eval
my $now = int(time * 1000);
[ [ "FLUSHALL" ],
  enr("OLD-1", "inventory_at", $now - 7200 * 1000),
  enr("OLD-2", "inventory_at", $now - 7200 * 1000),
  enr("NEW-1"),
  enr("FRESH", "inventory_at", $now),
  enr("OFF", "enabled", "0"),
  [ "HSET", "mdm:enr:{OLD-1}:U", "type", "User", "enabled", "1" ] ]
--- request
GET /v1/templates/DeviceInformation
--- error_code: 200
--- json eval
sub {
    my ($tpl) = @_;
    my ($q) = grep { $_->{name} eq 'queries' } @{ $tpl->{keys} };
    my $w = start_worker(inventory_interval => 3600, inventory_batch => 2,
                         repush_interval => 0);
    my $t0 = time;
    my $asked = sub { scalar grep { redis('HEXISTS', "mdm:enr:{$_}", 'inventory_queued_at') }
                      qw(OLD-1 OLD-2 NEW-1 FRESH OFF) };
    wait_for(sub { $asked->() >= 2 }, 10, 'a first step');
    Test::More::is($asked->(), 2, 'at most inventory_batch in one step');
    wait_for(sub { $asked->() >= 3 }, 10, 'all three');
    Test::More::ok(time - $t0 >= 0.9, 'the third a step later');
    sleep 2.5;
    for my $id (qw(OLD-1 OLD-2 NEW-1)) {
        Test::More::is_deeply(queued($id), [ 'DeviceInformation' ], "$id asked once");
        Test::More::ok(redis('HGET', "mdm:enr:{$id}", 'inventory_queued_at') > 0, "$id marked");
    }
    for my $id (qw(FRESH OFF OLD-1}:U)) {
        Test::More::is_deeply(queued($id), [], "$id not asked");
    }
    # the worker's APNs part took the pushes (no token here: it records why)
    for my $id (qw(OLD-1 OLD-2 NEW-1 FRESH OFF)) {
        Test::More::is(redis('HEXISTS', "mdm:enr:{$id}", 'push_at'),
                       ($id =~ /^(?:FRESH|OFF)\z/ ? 0 : 1), "$id pushed or not");
    }
    my ($uuid) = @{ redis('LRANGE', 'mdm:q:{OLD-1}', 0, -1) };
    my $c = redis('HGETALL', "mdm:cmd:$uuid");
    my %c = @$c;
    my $p = plist_parse($c{plist});
    Test::More::is_deeply([ schema_check($p) ], [], 'fits the schema');
    Test::More::is($p->{v}{CommandUUID}{v}, $uuid, 'its CommandUUID');
    Test::More::is_deeply([ map { $_->{v} } @{ $p->{v}{Command}{v}{Queries}{v} } ], $q->{default},
                          "the template's default queries");
    Test::More::ok($c{expires_at} > time * 1000 + 3000 * 1000, 'expires at the next refresh');
    Test::More::ok(redis('TTL', "mdm:cmd:$uuid") > 7000, 'kept two intervals');
    Test::More::is($c{result_ttl}, 3600, 'its result kept one interval');
    Test::More::is(redis('SMEMBERS', "mdm:cmd:$uuid:targets")->[0], 'OLD-1', 'its target');
    Test::More::is(stop_worker($w), 0, 'the worker stops cleanly');
    Test::More::like(worker_log($w), qr/inventory: DeviceInformation queued to 2 devices/, 'logged');
    1;
}



=== TEST 2: off by default: nothing queued
--- redis_setup eval
[ [ "FLUSHALL" ], enr("OLD-1", "inventory_at", "1") ]
--- request
GET /v1/templates/DeviceInformation
--- error_code: 200
--- json eval
sub {
    my $w = start_worker(repush_interval => 0);
    sleep 2.5;
    Test::More::is_deeply(queued('OLD-1'), [], 'nothing');
    Test::More::is(stop_worker($w), 0, 'stops');
    1;
}
