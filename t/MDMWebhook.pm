package t::MDMWebhook;

# Helpers for the webhook delivery tests (t/webhook*.t): the fast receiver
# (t/servers/fasthook.c, built here with the system cc), events put into
# mdm:events the way the module's checkin.lua / connect.lua do, what the
# receiver got, and the cost of a worker (CPU time, Redis calls).
#
#     use t::MDM; use t::MDMWorker; use t::MDMWebhook;
#     add_events(prefix => 'E', from => 1, to => 2000, per => 10);
#     my $r = fast_receiver();
#     my $w = start_worker(webhook_url => $r->{url}, ...);
#     wait_for(sub { receiver_count($r) >= 20000 }, 60, "all delivered");
#     my @d = deliveries($r);     # [udid, command_uuid, event_id] each
#     my %c = check_deliveries(\@d, events(prefix => 'E', ...));

use strict;
use warnings;

use Exporter ();
our @ISA = ('Exporter');
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use t::MDM ();

our @EXPORT = qw(fast_receiver receiver_stop receiver_signal receiver_count
                 receiver_bodies deliveries add_events event_uuids
                 check_deliveries cpu_seconds redis_calls free_port);

my $Root = dirname(dirname(abs_path(__FILE__)));
my $Dir = tempdir('mdm-webhook-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my ($Bin, $Count, @Running) = (undef, 0);

sub free_port { return t::MDM::_pick_port() }

sub _build {
    return $Bin if $Bin;
    my $bin = "$Dir/fasthook";
    my $out = t::MDM::_run('cc', '-O2', '-Wall', '-o', $bin,
                           "$Root/t/servers/fasthook.c");
    return $Bin = $bin;
}

# fast_receiver(port => N, status => 200): a started receiver
#   { pid, port, url (.../hook), log }
sub fast_receiver {
    my %opt = @_;
    my $bin = _build();
    my $n = ++$Count;
    my $log = $opt{log} // "$Dir/hook-$n.log";
    open my $fh, '>>', $log or die "$log: $!\n";
    close $fh;

    for my $try (1 .. ($opt{port} ? 1 : 5)) {
        my $port = $opt{port} || free_port();
        my $pid = t::MDM::_spawn([ $bin, '--port', $port, '--log', $log,
                                   '--status', $opt{status} // 200 ],
                                 "$Dir/hook-$n.out", "$Dir/hook-$n.err", 1);
        my $deadline = time + 10;
        while (time < $deadline) {
            last if waitpid($pid, WNOHANG) == $pid;
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $port, Proto => 'tcp');
            if ($s) {
                close $s;
                my $r = { pid => $pid, port => $port, log => $log,
                          url => "http://127.0.0.1:$port/hook" };
                push @Running, $r;
                return $r;
            }
            sleep 0.02;
        }
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    die "fasthook did not start\n";
}

sub receiver_stop {
    my ($r) = @_;
    return unless $r->{pid};
    kill 'TERM', $r->{pid};
    waitpid($r->{pid}, 0);
    @Running = grep { $_ != $r } @Running;
    delete $r->{pid};
}

# SIGUSR1: answer 503 from now on; SIGUSR2: answer 200 again
sub receiver_signal { kill $_[1], $_[0]{pid} }

sub receiver_bodies {
    my ($r) = @_;
    open my $fh, '<:raw', $r->{log} or return ();
    my @b = <$fh>;
    chomp @b;
    return @b;
}

sub receiver_count {
    my ($r) = @_;
    open my $fh, '<:raw', $r->{log} or return 0;
    my $n = 0;
    $n += tr/\n// while sysread($fh, $_, 1 << 20);
    return $n;
}

# [udid, command_uuid, event_id] of every body, in the order received
# (regexes: JSON::PP would take minutes for 100,000 bodies)
sub deliveries {
    my ($r) = @_;
    my @d;
    for my $b (receiver_bodies($r)) {
        my ($u) = $b =~ /"udid":"([^"]*)"/;
        my ($c) = $b =~ /"command_uuid":"([^"]*)"/;
        my ($e) = $b =~ /"event_id":"([^"]*)"/;
        push @d, [ $u // '', $c // '', $e // '' ];
    }
    return @d;
}

# add_events(prefix => 'E', from => 1, to => N, per => K, start => S,
#            body => '...'):
# K Connect events for each of the enrollments PREFIX-000001.. (interleaved:
# every enrollment's first, then every second, ...), with the field layout
# of connect.lua; each one's command_uuid "ID/k" (k from S, default 1)
# names it.  Returns the number added.
sub add_events {
    my %o = @_;
    my ($from, $to, $per) = ($o{from} // 1, $o{to}, $o{per} // 1);
    my $body = $o{body} // '<?xml version="1.0"?><plist version="1.0"><dict>'
        . '<key>Status</key><string>Acknowledged</string></dict></plist>';
    my $added = 0;
    my $start = $o{start} // 1;
    for my $k ($start .. $start + $per - 1) {
        for (my $i = $from; $i <= $to; $i += 5000) {
            my $j = $i + 4999 > $to ? $to : $i + 4999;
            $added += t::MDM::redis('EVAL', q{
                local n = 0
                for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do
                    local id = string.format('%s-%06d', ARGV[1], i)
                    redis.call('XADD', 'mdm:events', '*', 'type', 'Connect',
                        'id', id, 'enrollment_type', 'Device',
                        'device_id', id, 'time', ARGV[5], 'params', '',
                        'status', 'Acknowledged',
                        'command_uuid', id .. '/' .. ARGV[4], 'body', ARGV[6])
                    n = n + 1
                end
                return n
            }, 0, $o{prefix} // 'E', $i, $j, $k, int(time * 1000), $body);
        }
    }
    return $added;
}

# the command_uuids add_events() gave, per enrollment in order
sub event_uuids {
    my %o = @_;
    my %u;
    for my $i (($o{from} // 1) .. $o{to}) {
        my $id = sprintf '%s-%06d', $o{prefix} // 'E', $i;
        $u{$id} = [ map { "$id/$_" } 1 .. ($o{per} // 1) ];
    }
    return \%u;
}

# check_deliveries(\@deliveries, \%expected from event_uuids) ->
#   (delivered => n, duplicates => n, missing => n, out_of_order => n,
#    unexpected => n)
sub check_deliveries {
    my ($d, $want) = @_;
    my (%seen, %got, %c);
    $c{$_} = 0 for qw(duplicates missing out_of_order unexpected);
    for my $x (@$d) {
        my ($u, $cmd) = @$x;
        if ($seen{$cmd}++) { $c{duplicates}++; next }
        push @{ $got{$u} }, $cmd;
    }
    $c{delivered} = scalar keys %seen;
    for my $u (keys %got) {
        if (!$want->{$u}) { $c{unexpected} += @{ $got{$u} }; next }
    }
    for my $u (keys %$want) {
        my @g = @{ $got{$u} // [] };
        my %pos;
        @pos{ @{ $want->{$u} } } = (0 .. $#{ $want->{$u} });
        $c{missing} += @{ $want->{$u} } - grep { exists $pos{$_} } @g;
        for my $i (1 .. $#g) {
            $c{out_of_order}++
                if ($pos{ $g[$i] } // 0) < ($pos{ $g[$i - 1] } // 0);
        }
    }
    return %c;
}

# user + system CPU seconds a process has used so far
sub cpu_seconds {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return undef;
    my $s = <$fh>;
    $s =~ s/^.*\)\s+//s;             # after "pid (comm)"
    my @f = split ' ', $s;           # f[0] is field 3 (state)
    my $tck = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
    return ($f[11] + $f[12]) / $tck; # fields 14 utime, 15 stime
}

# Redis INFO commandstats as { command => calls }
sub redis_calls {
    my %c;
    for (split /\r?\n/, t::MDM::redis('INFO', 'commandstats')) {
        $c{$1} = $2 if /^cmdstat_([^:]+):calls=(\d+)/;
    }
    return \%c;
}

END {
    local $?;
    for my $r (@Running) {
        kill 'KILL', $r->{pid};
        waitpid($r->{pid}, 0);
    }
}

1;
