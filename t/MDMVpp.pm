package t::MDMVpp;

# The Apps and Books mock (t/servers/vpp.pl) for the suites, and the V1/V2
# keys the module would write (the worker is driven through Redis only).
#
#     use t::MDM; use t::MDMServers; use t::MDMWorker; use t::MDMVpp;
#     my $vpp = start_vpp();
#     my $tok = vpp_ctl($vpp, 'location', { name => 'L1' })->{token};
#     vpp_config('acme', $vpp);                   # mdm:vpp:acme:config
#     my $r = vpp_job_wait(vpp_job('acme', 'token', token => $tok));
#     my $st = vpp_stats($vpp);

use strict;
use warnings;

use Exporter ();
our @ISA = ('Exporter');
use JSON::PP ();
use Time::HiRes qw(time sleep);
use t::MDM;
use t::MDMServers ();

our @EXPORT = qw(start_vpp vpp_ctl vpp_stats vpp_config vpp_job vpp_job_wait
                 vpp_status vpp_install vpp_events);

my $JSON = JSON::PP->new->utf8->canonical;
my $Seq = 0;

sub start_vpp {
    my $srv = t::MDMServers::_start('vpp', {}, []);
    $srv->{url} = "http://127.0.0.1:$srv->{port}";
    return $srv;
}

sub vpp_ctl { t::MDMServers::mock_ctl($_[0], 'vpp_ctl', $_[1], $_[2]) }
sub vpp_stats { t::MDMServers::mock_stats($_[0], 'vpp_stats') }

# the module's side of V1: the location's config (base_url: the mock)
sub vpp_config {
    my ($name, $srv, %more) = @_;
    redis('HSET', "mdm:vpp:$name:config", 'base_url', $srv->{url}, %more);
}

# V2: RPUSH a job, its id back
sub vpp_job {
    my ($name, $op, %f) = @_;
    my $id = sprintf('%016x%016x', $$, ++$Seq);
    redis('RPUSH', 'mdm:vpp:jobs', $JSON->encode({ id => $id, name => $name, op => $op,
        deadline => $f{deadline} // int(time * 1000) + 30_000, %f }));
    return $id;
}

# the reply of a token or sync job (GETDEL, as the module does)
sub vpp_job_wait {
    my ($id, $secs) = @_;
    my $end = time + ($secs // 30);
    while (time < $end) {
        my $r = redis('GETDEL', "mdm:vpp:reply:$id");
        return $JSON->decode($r) if defined $r;
        sleep 0.05;
    }
    die "no reply to VPP job $id\n";
}

sub vpp_status { my %h = @{ redis('HGETALL', "mdm:vpp:$_[0]:status") }; \%h }

# V3 as the module writes it: the command (not queued), the install's
# hashes, the job.  devs: [[serial, enrollment id or undef], ...]
sub vpp_install {
    my ($name, %o) = @_;
    my $iid = sprintf('%016x%016x', $$ + 7, ++$Seq);
    my $uuid = sprintf('CAFE%04X-0000-4000-8000-%012X', $$ % 65536, $Seq);
    my $action = $o{action} // 'install';
    redis('HSET', "mdm:cmd:$uuid", 'plist', '<plist/>', 'request_type',
          $action eq 'remove' ? 'RemoveApplication' : 'InstallApplication',
          'created_at', int(time * 1000), 'priority', 0);
    redis('EXPIRE', "mdm:cmd:$uuid", 30 * 86400);
    my @devs = @{ $o{devs} };
    redis('HSET', "mdm:vpp:install:$iid", name => $name, action => $action,
          adam_id => $o{adam}, pricing_param => 'STDQ', command_uuid => $uuid,
          created_at => int(time * 1000), state => 'pending', total => scalar @devs,
          associated => 0, queued => 0, failed => 0);
    my @f;
    for my $d (@devs) {
        push @f, $d->[0], $JSON->encode({ state => defined $d->[1] ? 'pending' : 'no_enrollment',
                                          defined $d->[1] ? (enrollment_id => $d->[1]) : () });
    }
    while (my @chunk = splice @f, 0, 1000) {
        redis('HSET', "mdm:vpp:install:$iid:dev", @chunk);
    }
    redis('EXPIRE', "mdm:vpp:install:$iid", 30 * 86400);
    redis('EXPIRE', "mdm:vpp:install:$iid:dev", 30 * 86400);
    my $id = sprintf('%016x%016x', $$ + 3, ++$Seq);
    redis('RPUSH', 'mdm:vpp:jobs', $JSON->encode({ id => $id, name => $name,
        op => $action, install => $iid, deadline => 0 }));
    return ($iid, $uuid);
}

sub vpp_events {
    my ($type) = @_;
    my @out;
    for my $e (@{ redis('XRANGE', 'mdm:events', '-', '+') }) {
        my %f = @{ $e->[1] };
        push @out, \%f if !defined $type || $f{type} eq $type;
    }
    return @out;
}

1;
