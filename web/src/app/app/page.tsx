import { AppShell } from '@/components/AppShell';

export const metadata = { title: 'Hearth' };

export default function AppPage() {
  return <AppShell />;
}
