# mdm_metrics: DEP devices and assignment results per DEP name, as
# mdm-worker counted them while it synced and assigned against the DEP mock
# (t/servers/dep.pl), checked against what the mock answered; VPP token
# expiry from contract V1's keys (written here: the VPP worker comes later).

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMDep;
use File::Temp qw(tempfile);

no_shuffle();

our $DEP = start_dep();
our $W;

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        location = /metrics { mdm_metrics; }
    },
);

sub status { my %h = @{ redis('HGETALL', "mdm:dep:$_[0]:status") }; \%h }

# waits until a sync cycle newer than $after is recorded
sub synced {
    my ($name, $after, $what) = @_;
    wait_for(sub { my $s = status($name);
                   ($s->{phase} // '') eq 'idle' && ($s->{last_sync_at} // 0) > $after },
             60, $what);
    return status($name)->{last_sync_at};
}

sub metric ($$) {
    my ($body, $sample) = @_;
    return $body =~ /^\Q$sample\E (\S+)$/m ? $1 : undef;
}

sub promtool_ok ($) {
    my ($body) = @_;
    my ($fh, $file) = tempfile();
    print $fh $body;
    close $fh;
    my $out = `promtool check metrics < $file 2>&1`;
    Test::More::is($?, 0, 'promtool check metrics accepts it') or Test::More::diag($out);
}

our $LAST = 0;

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(dep_ctl dep_stats dep_name start_worker stop_worker wait_for);
}

run_tests();

__DATA__

=== TEST 1: 23 devices fetched and assigned: 20 at once, one THROTTLED then assigned, one FAILED twice (given up), one NOT_ACCESSIBLE; then one deleted, its sync answered 500 once
--- redis_setup eval
sub {
    dep_ctl($::DEP, 'devices', { add => 20 });
    dep_ctl($::DEP, 'assign_rules', { retry_after => 1, rules => {
        T1 => ['THROTTLED'], F2 => ['FAILED', 'FAILED', 'FAILED'], N1 => ['NOT_ACCESSIBLE'] } });
    dep_ctl($::DEP, 'devices', { add => ['T1', 'F2', 'N1'] });
    dep_name('acme', $::DEP, profile => 'PROF-A');
    $::W = start_worker(worker_id => 'dm', repush_interval => 0, dep_assign_backoff => 1,
                        dep_assign_retries => 2);
    $::LAST = ::synced('acme', 0, 'first fetch');
    wait_for(sub { my $a = dep_stats($::DEP, 1)->{attempts};
                   @{ $a->{T1} // [] } >= 2 && @{ $a->{F2} // [] } >= 2
                   && redis('HLEN', 'mdm:dep:acme:assigning') == 0
                   && redis('ZCARD', 'mdm:dep:acme:assignq') == 0 }, 30, 'assignments settled');
    dep_ctl($::DEP, 'devices', { delete => ['S0000001'] });
    dep_ctl($::DEP, 'inject', { path => '/devices/sync', status => 500, count => 1 });
    redis('SADD', 'mdm:dep:syncnow', 'acme');
    $::LAST = ::synced('acme', $::LAST, 'sync of the deletion');
}
--- request
GET /metrics
--- error_code: 200
--- after_each eval
[ sub {
    my ($block, $b) = @_;
    ::promtool_ok($b);
    my $a = dep_stats($::DEP, 1)->{attempts};
    my %mock;
    for my $s (keys %$a) { $mock{lc $_->[1]}++ for @{ $a->{$s} } }
    Test::More::is_deeply(\%mock, { success => 21, throttled => 1, failed => 2, not_accessible => 1 },
                          'the mock answered 25 assignments: 21 SUCCESS, 1 THROTTLED, 2 FAILED, 1 NOT_ACCESSIBLE');
    for my $r (qw(success throttled failed not_accessible)) {
        Test::More::is(::metric($b, qq{ngx_mdm_dep_assignments_total{dep_name="acme",result="$r"}}),
                       $mock{$r}, "assignments $r: as the mock answered");
    }
    Test::More::is(redis('ZCARD', 'mdm:dep:acme:serials'), 23, 'the deleted device is still kept (retention)');
    Test::More::is(::metric($b, 'ngx_mdm_dep_devices{dep_name="acme"}'), 22,
                   'devices: 22, the deleted one not counted');
    Test::More::ok(::metric($b, 'ngx_mdm_dep_last_sync_timestamp_seconds{dep_name="acme"}') > 0, 'last sync');
    my $calls = dep_stats($::DEP)->{calls};
    Test::More::is(::metric($b, 'ngx_mdm_dep_syncs_total{dep_name="acme"}'), 2,
                   'two completed: the first fetch, the sync of the deletion');
    Test::More::is(::metric($b, 'ngx_mdm_dep_errors_total{dep_name="acme"}'), 1, 'one failed call: the 500');
    Test::More::is($calls->{'/devices/sync'}, 2, 'the mock saw the sync twice (500, then 200)');
    Test::More::is(stop_worker($::W), 0, 'the worker stops cleanly');
} ]



=== TEST 2: VPP token expiry and stop per location from contract V1's keys
--- redis_setup eval
sub {
    redis('SADD', 'mdm:vpp:names', 'main', 'school-2', 'fresh');
    redis('HSET', 'mdm:vpp:main:status', 'token_expiry', 1830297600, 'org', 'Acme',
          'location', 'Main "HQ"', 'stopped', 0);
    redis('HSET', 'mdm:vpp:school-2:status', 'token_expiry', 1798761600, 'stopped', 1,
          'stop_reason', '9625');
}
--- request
GET /metrics
--- error_code: 200
--- after_each eval
[ sub {
    my ($block, $b) = @_;
    ::promtool_ok($b);
    Test::More::is(::metric($b, 'ngx_mdm_vpp_token_expiry_timestamp_seconds{vpp_name="main"}'), 1830297600, 'main');
    Test::More::is(::metric($b, 'ngx_mdm_vpp_token_expiry_timestamp_seconds{vpp_name="school-2"}'), 1798761600, 'school-2');
    Test::More::unlike($b, qr/^ngx_mdm_vpp_token_expiry_timestamp_seconds\{vpp_name="fresh"\}/m,
                       'no expiry for a location without a token yet');
    Test::More::is(::metric($b, 'ngx_mdm_vpp_stopped{vpp_name="school-2"}'), 1, 'school-2 stopped');
    Test::More::is(::metric($b, 'ngx_mdm_vpp_stopped{vpp_name="main"}'), 0, 'main not');
} ]
