package t::MDMDep;

# The DEP mock (t/servers/dep.pl) for the suites, and a DEP name in Redis
# pointing at it (contract D1).
#
#     use t::MDM; use t::MDMServers; use t::MDMDep;
#     my $dep = start_dep();                      # one ABM token
#     dep_name('acme', $dep, profile => 'P1');    # mdm:dep:acme:*
#     dep_ctl($dep, 'devices', { add => 100 });   # /_ctl/devices
#     my $st = dep_stats($dep);                   # /_ctl/stats

use strict;
use warnings;

use Exporter ();
our @ISA = ('Exporter');
use JSON::PP ();
use t::MDM;
use t::MDMServers ();

our @EXPORT = qw(start_dep dep_ctl dep_stats dep_name);

my $JSON = JSON::PP->new->utf8->canonical;
my $N = 0;

# start_dep(fetch_max => N, sync_max => N): a mock with its own credentials
sub start_dep {
    my (%opt) = @_;
    my $i = ++$N;
    my %cred = (ck => "CK_$i", cs => "CS_$i/+=", at => "AT_$i", as => "AS_$i&");
    my @args = map { ("--$_", $cred{$_}) } sort keys %cred;
    push @args, '--fetch-max', $opt{fetch_max} if $opt{fetch_max};
    push @args, '--sync-max', $opt{sync_max} if $opt{sync_max};
    my $srv = t::MDMServers::_start('dep', {}, \@args);
    $srv->{url} = "http://127.0.0.1:$srv->{port}";
    $srv->{cred} = \%cred;
    return $srv;
}

sub dep_ctl { t::MDMServers::mock_ctl($_[0], 'dep_ctl', $_[1], $_[2]) }
sub dep_stats { t::MDMServers::mock_stats($_[0], 'dep_stats', $_[1] ? 'full=1' : '') }

# dep_name(NAME, $srv, profile => UUID, expiry => RFC3339): the D1 keys
sub dep_name {
    my ($name, $srv, %opt) = @_;
    my $c = $srv->{cred};
    redis('SET', "mdm:dep:$name:tokens", $JSON->encode({
        consumer_key => $c->{ck}, consumer_secret => $c->{cs},
        access_token => $c->{at}, access_secret => $c->{as},
        access_token_expiry => $opt{expiry} // '2099-01-01T00:00:00Z' }));
    redis('HSET', "mdm:dep:$name:config", 'base_url', $srv->{url} . ($opt{slash} ? '/' : ''));
    redis('HSET', "mdm:dep:$name:assigner", 'profile_uuid', $opt{profile},
          'updated_at', time) if defined $opt{profile};
    redis('SADD', 'mdm:dep:names', $name);
}

1;
