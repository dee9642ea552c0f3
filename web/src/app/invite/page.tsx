import { InviteView } from '@/components/InviteView';

export const metadata = { title: 'Invitation · Hearth' };

export default function InvitePage() {
  return <InviteView />;
}
